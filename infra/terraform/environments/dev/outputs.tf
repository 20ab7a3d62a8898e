# Outputs named after the lab's settings: `terraform output -json` turned into MDSLAB_* variables points a
# lab at this environment (infra/terraform/README.md). Secrets are not outputs: their ARNs are, below.

output "MDSLAB_PROFILE" {
  description = "Nothing to start locally: every service is this environment's"
  value       = "services"
}

output "MDSLAB_S3__ENDPOINT_URL" {
  description = "S3's regional endpoint"
  value       = "https://s3.${var.region}.amazonaws.com"
}

output "MDSLAB_S3__REGION" {
  description = "The buckets' Region"
  value       = var.region
}

output "MDSLAB_LAKE__RAW_BUCKET" {
  description = "Bronze"
  value       = module.lake_storage.raw_bucket
}

output "MDSLAB_LAKE__CURATED_BUCKET" {
  description = "Silver and gold"
  value       = module.lake_storage.curated_bucket
}

output "MDSLAB_ML__ARTIFACT_BUCKET" {
  description = "MLflow's artifacts"
  value       = module.lake_storage.artifact_bucket
}

output "MDSLAB_KAFKA__BOOTSTRAP_SERVERS" {
  description = "MSK's TLS + IAM brokers (the lab's clients need TLS/SASL settings first: README)"
  value       = module.streaming.bootstrap_brokers_iam
}

output "MDSLAB_POSTGRES__HOST" {
  description = "The RDS instance"
  value       = module.database.address
}

output "MDSLAB_POSTGRES__PORT" {
  description = "The RDS instance's port"
  value       = module.database.port
}

output "MDSLAB_POSTGRES__USER" {
  description = "The RDS master user"
  value       = module.database.username
}

output "MDSLAB_POSTGRES__DATABASE" {
  description = "The lab's database"
  value       = module.database.database
}

output "postgres_password_secret_arn" {
  description = "Secrets Manager secret (JSON with `password`) for MDSLAB_POSTGRES__PASSWORD"
  value       = module.database.master_user_secret_arn
}

output "api_key_secret_arn" {
  description = "Secrets Manager secret for MDSLAB_API__API_KEY"
  value       = module.api.api_key_secret_arn
}

output "api_url" {
  description = "The ingest API (internal load balancer)"
  value       = module.api.url
}

output "api_ecr_repository_url" {
  description = "Where the API's image is pushed"
  value       = module.api.ecr_repository_url
}

output "eks_cluster_name" {
  description = "Install KubeRay here with Helm; the RayCluster's head:6379 is MDSLAB_COMPUTE__RAY_ADDRESS"
  value       = module.compute.cluster_name
}

output "airflow_webserver_url" {
  description = "MWAA's Airflow UI (inside the VPC)"
  value       = module.orchestration.webserver_url
}

output "airflow_dag_bucket" {
  description = "Copy dags/ to s3://<this>/dags/"
  value       = module.orchestration.dag_bucket
}
