variable "name" {
  description = "Prefix of every resource of this environment, e.g. mdslab-dev"
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets for the control plane's interfaces and the nodes"
  type        = list(string)
}

variable "kms_key_arn" {
  description = "The customer-managed key for Kubernetes secrets and the control-plane log group"
  type        = string
}

variable "kubernetes_version" {
  description = "An EKS version in standard support (aws eks describe-cluster-versions)"
  type        = string
  default     = "1.34"
}

variable "node_instance_types" {
  description = "Ray nodes; Spark executors hold their cores for a session's life (size to the data)"
  type        = list(string)
}

variable "node_capacity_type" {
  description = "ON_DEMAND or SPOT"
  type        = string
  default     = "ON_DEMAND"
}

variable "node_min_size" {
  description = "Fewest Ray nodes"
  type        = number
}

variable "node_desired_size" {
  description = "Ray nodes at creation (KubeRay's autoscaler moves it afterwards)"
  type        = number
}

variable "node_max_size" {
  description = "Most Ray nodes"
  type        = number
}

variable "log_retention_days" {
  description = "Days control-plane logs are kept"
  type        = number
  default     = 365
}
