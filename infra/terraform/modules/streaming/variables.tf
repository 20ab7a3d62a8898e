variable "name" {
  description = "Prefix of every resource of this environment, e.g. mdslab-dev"
  type        = string
}

variable "vpc_id" {
  description = "The lab's VPC"
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per zone; brokers are spread evenly over them"
  type        = list(string)
}

variable "client_cidr_block" {
  description = "Where Kafka clients connect from (the VPC)"
  type        = string
}

variable "kms_key_arn" {
  description = "The customer-managed key for broker storage and the log group"
  type        = string
}

variable "kafka_version" {
  description = "MSK's Kafka version (3.x; 3.9.x is KRaft-capable and the last 3.x line)"
  type        = string
  default     = "3.9.x"
}

variable "broker_count" {
  description = "Brokers; a multiple of the number of subnets"
  type        = number
}

variable "broker_instance_type" {
  description = "Broker size, e.g. kafka.t3.small (dev) or kafka.m7g.large"
  type        = string
}

variable "broker_volume_gb" {
  description = "EBS storage per broker"
  type        = number
  default     = 100
}

variable "replication_factor" {
  description = "Replicas of each topic the lab creates (at most broker_count)"
  type        = number
}

variable "retention_hours" {
  description = "How long brokers keep events: only the consumer's worst lag, bronze holds the data"
  type        = number
  default     = 168
}

variable "log_retention_days" {
  description = "Days broker logs are kept"
  type        = number
  default     = 365
}
