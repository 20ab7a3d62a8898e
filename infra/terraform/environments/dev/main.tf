# The lab on AWS, dev: the smallest shape that still has every layer: two zones, one NAT gateway, two small brokers,
# a single-AZ database without deletion protection, one Ray node, the smallest MWAA, one API task.
# Buckets can be destroyed non-empty here, nowhere else.

provider "aws" {
  region = var.region

  default_tags {
    tags = { Project = "mdslab", Environment = "dev" }
  }
}

locals {
  name          = "mdslab-dev"
  bucket_prefix = "${var.bucket_prefix}mdslab-dev-"
}

module "keys" {
  source = "../../modules/keys"
  name   = local.name
}

module "network" {
  source             = "../../modules/network"
  name               = local.name
  cidr_block         = "10.40.0.0/16"
  availability_zones = ["${var.region}a", "${var.region}b"]
  single_nat_gateway = true
  kms_key_arn        = module.keys.key_arn
}

module "lake_storage" {
  source        = "../../modules/lake-storage"
  bucket_prefix = local.bucket_prefix
  kms_key_arn   = module.keys.key_arn
  force_destroy = true
}

module "streaming" {
  source               = "../../modules/streaming"
  name                 = local.name
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.private_subnet_ids
  client_cidr_block    = module.network.vpc_cidr_block
  kms_key_arn          = module.keys.key_arn
  broker_count         = 2
  broker_instance_type = "kafka.t3.small"
  broker_volume_gb     = 20
  replication_factor   = 2
}

module "database" {
  #checkov:skip=CKV_AWS_157:dev runs a single-AZ database (multi_az = false); prod sets multi_az
  #checkov:skip=CKV_AWS_293:dev databases are disposable (deletion_protection = false); prod sets it
  source                = "../../modules/database"
  name                  = local.name
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids
  client_cidr_block     = module.network.vpc_cidr_block
  kms_key_arn           = module.keys.key_arn
  instance_class        = "db.t4g.medium"
  multi_az              = false
  deletion_protection   = false
  backup_retention_days = 1
}

module "compute" {
  source              = "../../modules/compute"
  name                = local.name
  subnet_ids          = module.network.private_subnet_ids
  kms_key_arn         = module.keys.key_arn
  node_instance_types = ["m7i.xlarge"]
  node_min_size       = 1
  node_desired_size   = 1
  node_max_size       = 3
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
  environment_class = "mw1.small"
  max_workers       = 2
  force_destroy     = true
}

module "api" {
  #checkov:skip=CKV_AWS_150:dev load balancers are disposable (deletion_protection = false); prod sets it
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
  desired_count           = 1
  deletion_protection     = false
}
