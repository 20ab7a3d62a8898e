variable "name" {
  description = "Prefix of every resource of this environment, e.g. mdslab-dev"
  type        = string
}

variable "vpc_id" {
  description = "The lab's VPC"
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the load balancer and the tasks"
  type        = list(string)
}

variable "client_cidr_block" {
  description = "Where API clients connect from, and where Kafka is (the VPC)"
  type        = string
}

variable "kms_key_arn" {
  description = "The customer-managed key for ECR, the API key's secret and the log group"
  type        = string
}

variable "access_log_bucket" {
  description = "The bucket that receives the load balancer's access logs (prefix alb/)"
  type        = string
}

variable "certificate_arn" {
  description = "The ACM certificate of the API's HTTPS listener"
  type        = string
}

variable "kafka_bootstrap_servers" {
  description = "MSK's TLS + IAM bootstrap brokers: the tasks' MDSLAB_KAFKA__BOOTSTRAP_SERVERS"
  type        = string
}

variable "kafka_cluster_arn" {
  description = "The MSK cluster the API produces to"
  type        = string
}

variable "kafka_topic_prefix" {
  description = "The tasks' MDSLAB_KAFKA__TOPIC_PREFIX (empty: the lab's topic names as they are)"
  type        = string
  default     = ""
}

variable "image_tag" {
  description = "The image to run from the ECR repository (tags are immutable: one tag per build)"
  type        = string
}

variable "task_cpu" {
  description = "Fargate CPU units per task"
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate memory (MiB) per task"
  type        = number
  default     = 1024
}

variable "desired_count" {
  description = "API tasks; more than one spreads them over zones"
  type        = number
}

variable "deletion_protection" {
  description = "Refuse to delete the load balancer until this is turned off"
  type        = bool
}

variable "log_retention_days" {
  description = "Days the API's logs are kept"
  type        = number
  default     = 365
}
