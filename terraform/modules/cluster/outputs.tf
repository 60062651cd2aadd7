output "cluster_arn" {
  description = "ARN of the ECS cluster (ECSTask.cluster)."
  value       = aws_ecs_cluster.this.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "log_group_name" {
  description = "Name of the CloudWatch log group for worker and flow-run containers."
  value       = aws_cloudwatch_log_group.this.name
}

output "log_group_arn" {
  description = "ARN of the CloudWatch log group (without the :* suffix)."
  value       = aws_cloudwatch_log_group.this.arn
}

output "security_group_id" {
  description = "ID of the egress-only security group for the worker and flow-run tasks."
  value       = aws_security_group.this.id
}
