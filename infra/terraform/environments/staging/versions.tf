# Terraform and the AWS provider for the staging environment. The state lives in S3 (locked with S3's own
# lock file); bucket, key and region are given at init: see infra/terraform/README.md.
terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  backend "s3" {
    encrypt      = true
    use_lockfile = true
  }
}
