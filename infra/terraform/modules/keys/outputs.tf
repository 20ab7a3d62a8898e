output "key_arn" {
  description = "The lab's customer-managed KMS key"
  value       = aws_kms_key.lab.arn
}
