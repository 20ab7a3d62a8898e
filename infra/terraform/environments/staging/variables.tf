variable "region" {
  description = "The AWS Region the lab runs in"
  type        = string
  default     = "eu-west-1"
}

variable "bucket_prefix" {
  description = "Your organisation's prefix for bucket names, which are global on AWS (e.g. acme-)"
  type        = string
}

variable "api_certificate_arn" {
  description = "The ACM certificate for the API's HTTPS listener"
  type        = string
}

variable "api_image_tag" {
  description = "The API image's tag in the ECR repository this environment creates"
  type        = string
}
