# One customer-managed KMS key for the lab's data at rest: the lake's buckets, Kafka's logs, the database,
# its Performance Insights and master-password secret, EKS secrets, MWAA, ECR and every log group.
# One key, not one per service, because the lab is one trust domain: whoever may read bronze may read the
# broker's disks. Rotation is on (yearly, by KMS); the key policy lets the account administer it through IAM
# and lets CloudWatch Logs use it for this account's log groups only.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.region
}

resource "aws_kms_key" "lab" {
  description             = "${var.name}: the lab's data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_in_days

  # Inline (not an aws_iam_policy_document) because a key policy's "*" resource means "this key".
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersTheKeyThroughIam"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsThisAccountsLogGroups"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "lab" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.lab.key_id
}
