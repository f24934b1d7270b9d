variable "region" {
  description = "AWS region for everything."
  type        = string
  default     = "eu-central-1"
}

variable "environment" {
  description = "Name of this deployment (prefixes every resource)."
  type        = string
  default     = "prod"
}

variable "vpc_cidr" {
  description = "Address range of the VPC; the NetworkPolicies' node range (10.0.0.0/8) must contain it."
  type        = string
  default     = "10.40.0.0/16"
}

variable "kubernetes_version" {
  description = "EKS control plane version."
  type        = string
  default     = "1.32"
}

variable "node_instance_type" {
  description = "Instance type of the general node group (api, projections, NATS)."
  type        = string
  default     = "m7i.large"
}

variable "node_count" {
  description = "Nodes in the general node group (at least three: NATS and the api spread over them)."
  type        = number
  default     = 3
}

variable "database_instance_class" {
  description = "RDS instance class of the managed PostgreSQL."
  type        = string
  default     = "db.m7g.large"
}

variable "database_storage_gb" {
  description = "Allocated storage of the managed PostgreSQL, in GiB."
  type        = number
  default     = 100
}
