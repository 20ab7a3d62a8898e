output "address" {
  description = "The instance's DNS name: feeds MDSLAB_POSTGRES__HOST"
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Feeds MDSLAB_POSTGRES__PORT"
  value       = aws_db_instance.this.port
}

output "database" {
  description = "Feeds MDSLAB_POSTGRES__DATABASE"
  value       = aws_db_instance.this.db_name
}

output "username" {
  description = "Feeds MDSLAB_POSTGRES__USER"
  value       = aws_db_instance.this.username
}

output "master_user_secret_arn" {
  description = "The Secrets Manager secret RDS keeps the master password in (inject as MDSLAB_POSTGRES__PASSWORD)"
  value       = aws_db_instance.this.master_user_secret[0].secret_arn
}
