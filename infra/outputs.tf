output "cluster_name" {
  description = "EKS cluster name (`aws eks update-kubeconfig --name <this>`)."
  value       = aws_eks_cluster.main.name
}

output "cluster_endpoint" {
  description = "The Kubernetes API endpoint."
  value       = aws_eks_cluster.main.endpoint
}

output "media_bucket" {
  description = "PARLEY_S3_BUCKET of the prod overlay's config."
  value       = aws_s3_bucket.data["media"].bucket
}

output "backup_bucket" {
  description = "The CloudNativePG cluster's backup destination (s3://<this>/)."
  value       = aws_s3_bucket.data["backups"].bucket
}

output "database_endpoint" {
  description = "host:port of the managed PostgreSQL (its password is in Secrets Manager: database_secret_arn)."
  value       = aws_db_instance.main.endpoint
}

output "database_secret_arn" {
  description = "Secrets Manager secret holding the managed PostgreSQL's master password."
  value       = aws_db_instance.main.master_user_secret[0].secret_arn
}
