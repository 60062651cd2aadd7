# Names are a contract: `fleetflow aws register-blocks --from-terraform` reads
# `terraform output -json` of this example. Add outputs freely; never rename or remove one.

output "region" {
  description = "AWS region (AwsCredentials.region_name)."
  value       = var.region
}

output "cluster_arn" {
  description = "ECS cluster ARN (ECSTask.cluster)."
  value       = module.cluster.cluster_arn
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = module.cluster.cluster_name
}

output "vpc_id" {
  description = "VPC of the tasks (ECSTask.vpc_id)."
  value       = local.vpc_id
}

output "subnet_ids" {
  description = "Subnets flow runs are launched in (ECSTask network configuration subnets)."
  value       = local.subnet_ids
}

output "security_group_id" {
  description = "Security group of flow-run tasks (ECSTask network configuration security groups)."
  value       = module.cluster.security_group_id
}

output "assign_public_ip" {
  description = "Whether flow-run tasks need a public IP (ECSTask network configuration assignPublicIp)."
  value       = var.assign_public_ip
}

output "execution_role_arn" {
  description = "Task execution role ARN (ECSTask.execution_role_arn)."
  value       = module.iam.execution_role_arn
}

output "task_role_arn" {
  description = "Flow task role ARN (ECSTask.task_role_arn)."
  value       = module.iam.task_role_arn
}

output "worker_role_arn" {
  description = "Worker role ARN (the worker service's task role)."
  value       = module.iam.worker_role_arn
}

output "bucket_name" {
  description = "Code bucket name."
  value       = module.code_bucket.bucket_name
}

output "bucket_path" {
  description = "<bucket>/<bundles prefix> (S3.bucket_path of the storage block deployments upload bundles to)."
  value       = module.code_bucket.bucket_path
}

output "results_path" {
  description = "<bucket>/<results prefix> where flow runs persist results."
  value       = "${module.code_bucket.bucket_name}/${module.code_bucket.results_prefix}"
}

output "log_group_name" {
  description = "CloudWatch log group of worker and flow-run containers (ECSTask awslogs group)."
  value       = module.cluster.log_group_name
}

output "work_pool_name" {
  description = "Work pool the worker polls (the pool register-blocks creates)."
  value       = var.work_pool_name
}

output "image" {
  description = "Runtime image of the worker, and the default image of flow runs (ECSTask.image)."
  value       = var.image
}

output "database_url_secret_arn" {
  description = "Direct-PostgreSQL path (create_server = false): secret holding FLEETFLOW_DATABASE_URL, injected into flow runs as an ECS secret. Null with the server: flow runs get no database URL."
  value       = local.use_server ? null : local.database_url_secret_arn
}

output "worker_service_name" {
  description = "Name of the worker ECS service."
  value       = module.worker.service_name
}

output "api_url" {
  description = "FLEETFLOW_API_URL of the fleetflow server (HTTPS through the ALB), for the worker, flow runs and `fleetflow login`. Null without the server."
  value       = local.use_server ? module.server[0].api_url : null
}

output "alb_dns_name" {
  description = "DNS name of the server's ALB: point a record matching certificate_arn at it. Null without the server."
  value       = local.use_server ? module.server[0].alb_dns_name : null
}

output "server_service_name" {
  description = "Name of the server ECS service. Null without the server."
  value       = local.use_server ? module.server[0].service_name : null
}

output "server_database_url_secret_arn" {
  description = "Secret holding the server's FLEETFLOW_DATABASE_URL (filled by Terraform with create_database, by you otherwise). Null without the server."
  value       = local.use_server ? module.server[0].database_url_secret_arn : null
}

output "database_endpoint" {
  description = "host:port of the server's RDS database (null unless create_server and create_database)."
  value       = local.use_server ? module.server[0].database_endpoint : null
}

output "encryption_key_secret_arn" {
  description = "Secret holding the server's FLEETFLOW_ENCRYPTION_KEY (only the server reads it). Null without the server."
  value       = local.use_server ? local.encryption_key_secret_arn : null
}

output "worker_api_key_secret_arn" {
  description = "Secret holding the worker's FLEETFLOW_API_KEY (scope worker), injected as an ECS secret. Null without the server."
  value       = local.use_server ? local.worker_api_key_secret_arn : null
}
