output "bucket_name" {
  description = "Name of the bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "bucket_path" {
  description = "<bucket>/<bundles_prefix>: the bucket_path of the S3 storage block deployments upload their bundles to."
  value       = "${aws_s3_bucket.this.id}/${local.bundles_prefix}"
}

output "bundles_prefix" {
  description = "Key prefix holding code bundles (no slashes at either end)."
  value       = local.bundles_prefix
}

output "results_prefix" {
  description = "Key prefix holding persisted results (no slashes at either end)."
  value       = local.results_prefix
}
