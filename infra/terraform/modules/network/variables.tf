variable "name" {
  description = "Prefix of every resource of this environment, e.g. mdslab-dev"
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range; subnets are /20s carved from it"
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "The zones the subnets span, one private and one public subnet each (2 or 3; MSK brokers are spread over them)"
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3
    error_message = "availability_zones must name 2 or 3 zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, one zone's outage cuts egress) instead of one per zone"
  type        = bool
  default     = true
}

variable "kms_key_arn" {
  description = "The customer-managed key that encrypts the flow-log group"
  type        = string
}

variable "log_retention_days" {
  description = "Days the flow logs are kept"
  type        = number
  default     = 365
}
