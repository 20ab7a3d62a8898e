variable "name" {
  description = "Prefix of every resource of this environment, e.g. mdslab-dev"
  type        = string
}

variable "deletion_window_in_days" {
  description = "Days a scheduled key deletion can still be cancelled (7-30)"
  type        = number
  default     = 30
}
