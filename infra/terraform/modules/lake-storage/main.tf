# The lake: the buckets the lab's settings name (MDSLAB_LAKE__RAW_BUCKET for bronze,
# MDSLAB_LAKE__CURATED_BUCKET for silver and gold, MDSLAB_ML__ARTIFACT_BUCKET for MLflow's artifacts), each
# the s3-bucket building block (SSE-KMS with the lab's key, versioned, private, TLS only), and the bucket
# their server access logs go to, which the API's load balancer also writes its access logs into.
#
# The logging bucket is the one bucket encrypted with SSE-S3 rather than the customer key: S3 server access
# log delivery and ELB access log delivery both write only to SSE-S3 buckets.

data "aws_caller_identity" "current" {}
data "aws_elb_service_account" "current" {}

locals {
  log_bucket = "${var.bucket_prefix}access-logs"
}

module "raw" {
  source                  = "../s3-bucket"
  bucket                  = "${var.bucket_prefix}${var.raw_bucket}"
  kms_key_arn             = var.kms_key_arn
  access_log_bucket       = aws_s3_bucket.logs.id
  noncurrent_version_days = var.noncurrent_version_days
  force_destroy           = var.force_destroy
}

module "curated" {
  source                  = "../s3-bucket"
  bucket                  = "${var.bucket_prefix}${var.curated_bucket}"
  kms_key_arn             = var.kms_key_arn
  access_log_bucket       = aws_s3_bucket.logs.id
  noncurrent_version_days = var.noncurrent_version_days
  force_destroy           = var.force_destroy
}

module "artifacts" {
  source                  = "../s3-bucket"
  bucket                  = "${var.bucket_prefix}${var.artifact_bucket}"
  kms_key_arn             = var.kms_key_arn
  access_log_bucket       = aws_s3_bucket.logs.id
  noncurrent_version_days = var.noncurrent_version_days
  force_destroy           = var.force_destroy
}

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_145:S3 server access logs and ELB access logs are delivered only to buckets encrypted with SSE-S3, not SSE-KMS
  #checkov:skip=CKV_AWS_18:This is the access-log bucket; logging its own accesses into itself would loop
  #checkov:skip=CKV_AWS_144:Cross-region replication of access logs is a per-deployment audit decision, not part of the lab's shape
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications for access logs
  bucket        = local.log_bucket
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}

    expiration {
      days = var.access_log_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.logs]
}

data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "S3ServerAccessLogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }

  # ELB writes through its regional account in Regions older than August 2022, through the log-delivery
  # service in newer ones; both are allowed, to the API's prefix only.
  statement {
    sid       = "AlbAccessLogDeliveryRegionalAccount"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }

  statement {
    sid       = "AlbAccessLogDeliveryService"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/alb/AWSLogs/${data.aws_caller_identity.current.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }
  }

  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.logs.arn,
      "${aws_s3_bucket.logs.arn}/*",
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

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs.json

  depends_on = [aws_s3_bucket_public_access_block.logs]
}
