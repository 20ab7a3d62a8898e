# The AWS provider's major version this module is written for (6.x: `aws_region.region`, `aws_eip.domain`).
# A module takes a range; the exact provider build is fixed per environment by the .terraform.lock.hcl
# that `terraform init` writes there (commit it).
terraform {
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }
}
