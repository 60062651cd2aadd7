locals {
  bundles_prefix = trim(var.bundles_prefix, "/")
  results_prefix = trim(var.results_prefix, "/")
}

# Versioning, encryption and lifecycle are inline blocks on purpose: provider 3.x has no separate
# aws_s3_bucket_versioning / _server_side_encryption_configuration / _lifecycle_configuration
# resources (they arrived in 4.0), and 5.x still accepts the inline form (with a deprecation
# warning). This keeps the module inside ">= 3.39, < 6.0".
resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_18:Access logging needs a second, log-receiving bucket; opt in with access_log_bucket.
  #checkov:skip=CKV_AWS_144:Cross-region replication doubles storage cost; bundles are rebuilt from source and results are re-runnable.
  #checkov:skip=CKV_AWS_145:SSE-S3 (AES256) is the default; a KMS key is opt-in via kms_key_arn because every reader then needs kms:Decrypt.
  #checkov:skip=CKV2_AWS_62:Nothing consumes S3 event notifications for bundles or results.
  bucket        = var.bucket_name
  bucket_prefix = var.bucket_name == null ? var.bucket_prefix : null
  force_destroy = var.force_destroy

  versioning {
    enabled = true
  }

  server_side_encryption_configuration {
    rule {
      apply_server_side_encryption_by_default {
        sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
        kms_master_key_id = var.kms_key_arn
      }
      # S3 Bucket Keys cut KMS request costs; meaningless (and ignored) for AES256.
      bucket_key_enabled = var.kms_key_arn != null
    }
  }

  dynamic "logging" {
    for_each = var.access_log_bucket == null ? [] : [var.access_log_bucket]
    content {
      target_bucket = logging.value
      target_prefix = "s3-access/${coalesce(var.bucket_name, var.bucket_prefix)}/"
    }
  }

  # Bundles are content-addressed and never overwritten, so old *versions* only appear when a
  # bundle is deleted; expiring noncurrent versions is what actually frees space. Current bundles
  # expire only if asked: a deployment still pointing at an expired bundle could not start.
  lifecycle_rule {
    id                                     = "bundles"
    prefix                                 = "${local.bundles_prefix}/"
    enabled                                = true
    abort_incomplete_multipart_upload_days = 7

    noncurrent_version_expiration {
      days = var.noncurrent_version_expiration_days
    }

    dynamic "expiration" {
      for_each = var.bundle_expiration_days == null ? [] : [var.bundle_expiration_days]
      content {
        days = expiration.value
      }
    }
  }

  lifecycle_rule {
    id                                     = "results"
    prefix                                 = "${local.results_prefix}/"
    enabled                                = true
    abort_incomplete_multipart_upload_days = 7

    noncurrent_version_expiration {
      days = var.noncurrent_version_expiration_days
    }

    dynamic "expiration" {
      for_each = var.result_expiration_days == null ? [] : [var.result_expiration_days]
      content {
        days = expiration.value
      }
    }
  }

  tags = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

data "aws_iam_policy_document" "this" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.this.json

  # S3 rejects concurrent bucket-level writes ("OperationAborted: A conflicting conditional
  # operation"); applying the policy after the public access block avoids the race.
  depends_on = [aws_s3_bucket_public_access_block.this]
}
