# A managed PostgreSQL, for deployments that prefer it to the in-cluster CloudNativePG cluster:
# Multi-AZ, encrypted, backed up for 30 days, reachable from the cluster's nodes only. Its URL
# goes into `parley-secrets` as DATABASE_URL (drop the prod overlay's parley-db-app reference).

resource "aws_db_subnet_group" "main" {
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_security_group" "database" {
  name        = "${local.name}-database"
  description = "PostgreSQL from the Kubernetes nodes only"
  vpc_id      = aws_vpc.main.id
  ingress {
    description     = "PostgreSQL from the cluster"
    from_port       = 5432
    to_port         = 5432
    protocol        = "tcp"
    security_groups = [aws_eks_cluster.main.vpc_config[0].cluster_security_group_id]
  }
}

resource "aws_db_parameter_group" "main" {
  name   = local.name
  family = "postgres17"
  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
}

resource "aws_db_instance" "main" {
  identifier                          = local.name
  engine                              = "postgres"
  engine_version                      = "17"
  instance_class                      = var.database_instance_class
  allocated_storage                   = var.database_storage_gb
  max_allocated_storage               = var.database_storage_gb * 4
  db_name                             = "parley"
  username                            = "parley"
  manage_master_user_password         = true
  multi_az                            = true
  storage_encrypted                   = true
  kms_key_id                          = aws_kms_key.data.arn
  backup_retention_period             = 30
  deletion_protection                 = true
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = aws_kms_key.data.arn
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.service["rds-monitoring"].arn
  enabled_cloudwatch_logs_exports     = ["postgresql"]
  db_subnet_group_name                = aws_db_subnet_group.main.name
  parameter_group_name                = aws_db_parameter_group.main.name
  vpc_security_group_ids              = [aws_security_group.database.id]
  skip_final_snapshot                 = false
  final_snapshot_identifier           = "${local.name}-final"
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.service["rds-monitoring"].name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}
