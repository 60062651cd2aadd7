variable "name" {
  description = "Prefix of the three role names (<name>-execution, <name>-task, <name>-worker)."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the ECS cluster flow runs are launched in; every ECS permission is scoped to it."
  type        = string

  validation {
    condition     = can(regex("^arn:[^:]+:ecs:[^:]+:[0-9]+:cluster/.+$", var.cluster_arn))
    error_message = "The cluster_arn must look like arn:<partition>:ecs:<region>:<account>:cluster/<name>."
  }
}

variable "log_group_arn" {
  description = "ARN of the CloudWatch log group of worker and flow-run containers (without the :* suffix)."
  type        = string
}

variable "bucket_arn" {
  description = "ARN of the code bucket holding bundles and results."
  type        = string
}

variable "bundles_prefix" {
  description = "Key prefix of code bundles in the bucket; flow runs may only read it."
  type        = string
  default     = "bundles"
}

variable "results_prefix" {
  description = "Key prefix of persisted results in the bucket; flow runs may read and write it."
  type        = string
  default     = "results"
}

variable "task_definition_family_prefix" {
  description = "Families of the task definitions fleetflow registers start with this; RunTask is allowed only for them."
  type        = string
  default     = "fleetflow"
}

variable "flow_runs_launch_children" {
  description = "Give flow runs the same launch rights as the worker, so a parent flow can start its child deployments' tasks itself."
  type        = bool
  default     = true
}

variable "secret_arns" {
  description = "Secrets Manager secret ARNs the execution role may read to inject as container `secrets` (e.g. the orchestrator database URL)."
  type        = list(string)
  default     = []
}

variable "ssm_parameter_arns" {
  description = "SSM parameter ARNs the execution role may read to inject as container `secrets`."
  type        = list(string)
  default     = []
}

variable "kms_key_arns" {
  description = "KMS key ARNs protecting those secrets or the bucket; the roles get decrypt (and, for the task role, encrypt) on them."
  type        = list(string)
  default     = []
}

variable "ecr_repository_arns" {
  description = "ECR repositories images may be pulled from. Null means every repository of the cluster's account and region."
  type        = list(string)
  default     = null
}

variable "path" {
  description = "IAM path of the roles; starts and ends with a slash."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/(.*/)?$", var.path))
    error_message = "The path must start and end with a slash, e.g. / or /fleetflow/."
  }
}

variable "permissions_boundary_arn" {
  description = "Permissions boundary attached to all three roles, for accounts that require one."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
