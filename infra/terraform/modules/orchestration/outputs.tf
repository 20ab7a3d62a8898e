output "dag_bucket" {
  description = "Copy dags/ to s3://<this>/dags/"
  value       = module.dags.name
}

output "webserver_url" {
  description = "The Airflow UI, reachable from inside the VPC"
  value       = aws_mwaa_environment.this.webserver_url
}

output "execution_role_arn" {
  description = "The workers' role: grant it the lake buckets and the Kafka cluster"
  value       = aws_iam_role.execution.arn
}
