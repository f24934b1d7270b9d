# The cloud side of a production Parley on AWS: a Kubernetes cluster (EKS) for the workloads, a
# managed PostgreSQL (RDS) as an alternative to the in-cluster CloudNativePG cluster, and the S3
# buckets for media and database backups. `terraform init && terraform apply`; the outputs feed
# the prod overlay (k8s/README.md).
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      project = "parley"
      env     = var.environment
    }
  }
}
