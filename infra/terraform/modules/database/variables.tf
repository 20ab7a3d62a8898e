variable "name" {
  description = "Prefix of every resource of this environment, e.g. mdslab-dev"
  type        = string
}

variable "vpc_id" {
  description = "The lab's VPC"
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets in at least two zones"
  type        = list(string)
}

variable "client_cidr_block" {
  description = "Where PostgreSQL clients connect from (the VPC)"
  type        = string
}

variable "kms_key_arn" {
  description = "The customer-managed key for storage, Performance Insights and the password's secret"
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL major (or major.minor) version RDS offers"
  type        = string
  default     = "17"
}

variable "instance_class" {
  description = "e.g. db.t4g.medium (dev) or db.r7g.large (prod: the HNSW index lives in memory)"
  type        = string
}

variable "allocated_storage_gb" {
  description = "Initial storage"
  type        = number
  default     = 50
}

variable "max_allocated_storage_gb" {
  description = "Storage autoscaling ceiling"
  type        = number
  default     = 500
}

variable "database" {
  description = "The database the lab uses: MDSLAB_POSTGRES__DATABASE"
  type        = string
  default     = "mdslab"
}

variable "username" {
  description = "The master user: MDSLAB_POSTGRES__USER"
  type        = string
  default     = "mdslab"
}

variable "multi_az" {
  description = "A synchronous standby in a second zone"
  type        = bool
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is turned off"
  type        = bool
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)"
  type        = number
  default     = 7
}
