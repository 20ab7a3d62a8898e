output "url" {
  description = "The API's internal HTTPS address (point a DNS name of the certificate at it)"
  value       = "https://${aws_lb.api.dns_name}"
}

output "ecr_repository_url" {
  description = "Push the API's image here (docker push <url>:<tag>)"
  value       = aws_ecr_repository.api.repository_url
}

output "api_key_secret_arn" {
  description = "The secret that holds MDSLAB_API__API_KEY; put its value with `aws secretsmanager put-secret-value`"
  value       = aws_secretsmanager_secret.api_key.arn
}
