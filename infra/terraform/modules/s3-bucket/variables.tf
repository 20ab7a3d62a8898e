variable "bucket" {
  description = "The bucket's name (global on AWS: the environments prefix the lab's names)"
  type        = string
}

variable "kms_key_arn" {
  description = "The customer-managed key for SSE-KMS"
  type        = string
}

variable "access_log_bucket" {
  description = "The bucket that receives this bucket's server access logs"
  type        = string
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept before S3 expires it"
  type        = number
  default     = 30
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a non-empty bucket (dev only)"
  type        = bool
  default     = false
}
