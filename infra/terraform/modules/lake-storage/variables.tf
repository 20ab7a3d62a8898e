variable "bucket_prefix" {
  description = "Prepended to every bucket name (bucket names are global on AWS), e.g. acme-mdslab-dev-"
  type        = string
}

variable "raw_bucket" {
  description = "The bronze bucket's name after the prefix: the lab's MDSLAB_LAKE__RAW_BUCKET default"
  type        = string
  default     = "raw-data-bucket"
}

variable "curated_bucket" {
  description = "The silver and gold bucket's name after the prefix: the lab's MDSLAB_LAKE__CURATED_BUCKET default"
  type        = string
  default     = "curated-data-bucket"
}

variable "artifact_bucket" {
  description = "MLflow's artifact bucket's name after the prefix: the lab's MDSLAB_ML__ARTIFACT_BUCKET default"
  type        = string
  default     = "mlflow-artifacts"
}

variable "kms_key_arn" {
  description = "The customer-managed key for SSE-KMS"
  type        = string
}

variable "noncurrent_version_days" {
  description = "Days an overwritten or deleted object version is kept (Delta's own history is kept by its log until `mdslab optimize` vacuums)"
  type        = number
  default     = 30
}

variable "access_log_days" {
  description = "Days access logs are kept"
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (dev only)"
  type        = bool
  default     = false
}
