output "raw_bucket" {
  description = "Bronze: feeds MDSLAB_LAKE__RAW_BUCKET"
  value       = module.raw.name
}

output "curated_bucket" {
  description = "Silver and gold: feeds MDSLAB_LAKE__CURATED_BUCKET"
  value       = module.curated.name
}

output "artifact_bucket" {
  description = "MLflow's artifacts: feeds MDSLAB_ML__ARTIFACT_BUCKET"
  value       = module.artifacts.name
}

output "bucket_arns" {
  description = "The three lake buckets, for the IAM policies of whatever reads and writes the lake"
  value       = [module.raw.arn, module.curated.arn, module.artifacts.arn]
}

output "access_log_bucket" {
  description = "The bucket that receives S3 server access logs (prefix s3/) and the ALB's access logs (prefix alb/)"
  value       = aws_s3_bucket.logs.id
}
