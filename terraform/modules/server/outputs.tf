output "api_url" {
  description = "FLEETFLOW_API_URL for workers, flow-run tasks and `fleetflow login` (HTTPS through the ALB)."
  value       = "https://${aws_lb.this.dns_name}"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (point a record matching certificate_arn at it)."
  value       = aws_lb.this.dns_name
}

output "alb_security_group_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "server_security_group_id" {
  description = "Security group of the server tasks."
  value       = aws_security_group.server.id
}

output "service_name" {
  description = "Name of the server ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "ARN (with revision) of the server's task definition."
  value       = aws_ecs_task_definition.this.arn
}

output "database_url_secret_arn" {
  description = "Secrets Manager ARN of the server's FLEETFLOW_DATABASE_URL (created or given)."
  value       = local.db_url_arn
}

output "database_endpoint" {
  description = "host:port of the created database (null when create_database = false)."
  value       = var.create_database ? aws_db_instance.this[0].endpoint : null
}

output "container_definition" {
  description = "The server's container definition as registered, for review (secrets appear as ARNs only)."
  value       = local.container
}

output "health_check_path" {
  description = "Path the ALB checks (the server's only unauthenticated route)."
  value       = aws_lb_target_group.this.health_check[0].path
}
