variable "bucket_name" {
  description = "Exact bucket name. Null means a unique name generated from bucket_prefix."
  type        = string
  default     = null
}

variable "bucket_prefix" {
  description = "Prefix of the generated bucket name when bucket_name is null (at most 37 characters)."
  type        = string
  default     = "fleetflow-"
}

variable "bundles_prefix" {
  description = "Key prefix (folder) holding deployment code bundles; the S3 storage block's bucket_path is <bucket>/<bundles_prefix>."
  type        = string
  default     = "bundles"
}

variable "results_prefix" {
  description = "Key prefix (folder) holding persisted flow and task results."
  type        = string
  default     = "results"
}

variable "force_destroy" {
  description = "Let terraform destroy delete a bucket that still holds objects (all bundles and results are lost). Keep false outside tests."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key ARN for default bucket encryption. Null means SSE-S3 (AES256)."
  type        = string
  default     = null
}

variable "access_log_bucket" {
  description = "Name of an existing bucket that receives S3 server access logs. Null disables access logging."
  type        = string
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which overwritten or deleted object versions are removed for good."
  type        = number
  default     = 30
}

variable "bundle_expiration_days" {
  description = "Days after which bundles are deleted. Null keeps them: a deployment whose bundle expired can no longer start."
  type        = number
  default     = null
}

variable "result_expiration_days" {
  description = "Days after which persisted results are deleted. Null keeps them."
  type        = number
  default     = null
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
