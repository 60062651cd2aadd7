mock_provider "aws" {
  # The bucket policy document is rendered by the provider; a random mock string would not be JSON.
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
}

override_resource {
  target = aws_s3_bucket.this
  values = { id = "ff-code", arn = "arn:aws:s3:::ff-code" }
}

variables {
  bucket_name = "ff-code"
}

run "secure_defaults" {
  command = apply

  assert {
    condition     = output.bucket_path == "ff-code/bundles"
    error_message = "bucket_path is <bucket>/<bundles_prefix> (the S3 storage block's bucket_path)."
  }

  assert {
    condition     = aws_s3_bucket.this.versioning[0].enabled
    error_message = "Versioning is on."
  }

  assert {
    condition     = aws_s3_bucket.this.server_side_encryption_configuration[0].rule[0].apply_server_side_encryption_by_default[0].sse_algorithm == "AES256"
    error_message = "Without a KMS key the bucket uses SSE-S3."
  }

  assert {
    condition = alltrue([
      aws_s3_bucket_public_access_block.this.block_public_acls,
      aws_s3_bucket_public_access_block.this.block_public_policy,
      aws_s3_bucket_public_access_block.this.ignore_public_acls,
      aws_s3_bucket_public_access_block.this.restrict_public_buckets,
    ])
    error_message = "All public access is blocked."
  }

  assert {
    condition     = aws_s3_bucket.this.force_destroy == false
    error_message = "A bucket with bundles is never deleted by accident."
  }
}

run "lifecycle_keeps_current_bundles_unless_asked" {
  command = apply

  assert {
    condition     = [for r in aws_s3_bucket.this.lifecycle_rule : r.prefix] == ["bundles/", "results/"]
    error_message = "One lifecycle rule per prefix."
  }

  assert {
    condition     = alltrue([for r in aws_s3_bucket.this.lifecycle_rule : length(r.expiration) == 0])
    error_message = "Current bundles and results do not expire by default."
  }

  assert {
    condition     = alltrue([for r in aws_s3_bucket.this.lifecycle_rule : r.noncurrent_version_expiration[0].days == 30])
    error_message = "Noncurrent versions expire after 30 days."
  }
}

run "kms_and_expiry_options" {
  command = apply

  variables {
    kms_key_arn            = "arn:aws:kms:eu-west-1:111122223333:key/abc"
    bundle_expiration_days = 365
    bundles_prefix         = "/code/"
  }

  assert {
    condition     = aws_s3_bucket.this.server_side_encryption_configuration[0].rule[0].apply_server_side_encryption_by_default[0].kms_master_key_id == var.kms_key_arn
    error_message = "kms_key_arn switches default encryption to that key."
  }

  assert {
    condition     = aws_s3_bucket.this.lifecycle_rule[0].expiration[0].days == 365 && aws_s3_bucket.this.lifecycle_rule[0].prefix == "code/"
    error_message = "bundle_expiration_days expires current bundles; prefixes are normalised."
  }

  assert {
    condition     = output.bucket_path == "ff-code/code"
    error_message = "Slashes around the prefix are trimmed in bucket_path."
  }
}
