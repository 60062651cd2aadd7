output "service_name" {
  description = "Name of the worker ECS service."
  value       = aws_ecs_service.this.name
}

output "service_id" {
  description = "ID (ARN) of the worker ECS service."
  value       = aws_ecs_service.this.id
}

output "task_definition_arn" {
  description = "ARN (with revision) of the worker's task definition."
  value       = aws_ecs_task_definition.this.arn
}

output "container_definition" {
  description = "The worker's container definition as registered, for review (secrets appear as ARNs only)."
  value       = local.container
}
