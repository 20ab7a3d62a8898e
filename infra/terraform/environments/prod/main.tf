# The lab on AWS, prod: three zones with a NAT gateway each, three brokers (replication factor 3), a Multi-AZ database
# with deletion protection and a month of backups, an autoscaling Ray node group, three API tasks.
# Nothing is waived here: prod passes every check as it is.

provider "aws" {
  region = var.region

  default_tags {
    tags = { Project = "mdslab", Environment = "prod" }
  }
}

locals {
  name          = "mdslab-prod"
  bucket_prefix = "${var.bucket_prefix}mdslab-prod-"
}

module "keys" {
  source = "../../modules/keys"
  name   = local.name
}

module "network" {
  source             = "../../modules/network"
  name               = local.name
  cidr_block         = "10.42.0.0/16"
  availability_zones = ["${var.region}a", "${var.region}b", "${var.region}c"]
  single_nat_gateway = false
  kms_key_arn        = module.keys.key_arn
}

module "lake_storage" {
  source        = "../../modules/lake-storage"
  bucket_prefix = local.bucket_prefix
  kms_key_arn   = module.keys.key_arn
  force_destroy = false
}

module "streaming" {
  source               = "../../modules/streaming"
  name                 = local.name
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.private_subnet_ids
  client_cidr_block    = module.network.vpc_cidr_block
  kms_key_arn          = module.keys.key_arn
  broker_count         = 3
  broker_instance_type = "kafka.m7g.large"
  broker_volume_gb     = 500
  replication_factor   = 3
}

module "database" {
  source                = "../../modules/database"
  name                  = local.name
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids
  client_cidr_block     = module.network.vpc_cidr_block
  kms_key_arn           = module.keys.key_arn
  instance_class        = "db.r7g.large"
  multi_az              = true
  deletion_protection   = true
  backup_retention_days = 30
}

module "compute" {
  source              = "../../modules/compute"
  name                = local.name
  subnet_ids          = module.network.private_subnet_ids
  kms_key_arn         = module.keys.key_arn
  node_instance_types = ["m7i.2xlarge"]
  node_min_size       = 3
  node_desired_size   = 3
  node_max_size       = 12
}

module "orchestration" {
  source            = "../../modules/orchestration"
  name              = local.name
  bucket_prefix     = local.bucket_prefix
  vpc_id            = module.network.vpc_id
  subnet_ids        = module.network.private_subnet_ids
  client_cidr_block = module.network.vpc_cidr_block
  kms_key_arn       = module.keys.key_arn
  access_log_bucket = module.lake_storage.access_log_bucket
  environment_class = "mw1.medium"
  max_workers       = 10
  force_destroy     = false
}

module "api" {
  source                  = "../../modules/api"
  name                    = local.name
  vpc_id                  = module.network.vpc_id
  subnet_ids              = module.network.private_subnet_ids
  client_cidr_block       = module.network.vpc_cidr_block
  kms_key_arn             = module.keys.key_arn
  access_log_bucket       = module.lake_storage.access_log_bucket
  certificate_arn         = var.api_certificate_arn
  kafka_bootstrap_servers = module.streaming.bootstrap_brokers_iam
  kafka_cluster_arn       = module.streaming.cluster_arn
  image_tag               = var.api_image_tag
  desired_count           = 3
  deletion_protection     = true
}
