variable "name" {
  description = "Prefix of every resource of this environment, e.g. mdslab-dev"
  type        = string
}

variable "bucket_prefix" {
  description = "Prepended to the DAG bucket's name (bucket names are global)"
  type        = string
}

variable "vpc_id" {
  description = "The lab's VPC"
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets; MWAA uses the first two"
  type        = list(string)
}

variable "client_cidr_block" {
  description = "Where the Airflow UI is reached from, and where the lab's services are (the VPC)"
  type        = string
}

variable "kms_key_arn" {
  description = "The customer-managed key for the environment and its DAG bucket"
  type        = string
}

variable "access_log_bucket" {
  description = "The bucket that receives the DAG bucket's access logs"
  type        = string
}

variable "airflow_version" {
  description = "An Airflow 3 version MWAA offers"
  type        = string
  default     = "3.0.6"
}

variable "environment_class" {
  description = "mw1.micro, mw1.small, mw1.medium, ..."
  type        = string
}

variable "min_workers" {
  description = "Fewest Celery workers"
  type        = number
  default     = 1
}

variable "max_workers" {
  description = "Most Celery workers"
  type        = number
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a non-empty DAG bucket (dev only)"
  type        = bool
  default     = false
}
