output "execution_role_arn" {
  description = "ARN of the task execution role (ECSTask.execution_role_arn)."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "ARN of the flow task role (ECSTask.task_role_arn)."
  value       = aws_iam_role.task.arn
}

output "worker_role_arn" {
  description = "ARN of the worker's task role."
  value       = aws_iam_role.worker.arn
}

output "execution_role_name" {
  description = "Name of the task execution role, to attach extra policies."
  value       = aws_iam_role.execution.name
}

output "task_role_name" {
  description = "Name of the flow task role, to attach the policies user flows need (e.g. reading a data lake)."
  value       = aws_iam_role.task.name
}

output "worker_role_name" {
  description = "Name of the worker role."
  value       = aws_iam_role.worker.name
}

output "worker_policy_json" {
  description = "The worker role's inline policy document, for review."
  value       = data.aws_iam_policy_document.worker.json
}

output "task_policy_json" {
  description = "The flow task role's inline policy document, for review."
  value       = data.aws_iam_policy_document.task.json
}
