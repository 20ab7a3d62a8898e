# The lab on AWS, staging: prod's software on a smaller bill: two zones, one NAT gateway, two production-class brokers,
# a single-AZ database with a week of backups, a few Ray nodes, two API tasks.

provider "aws" {
  region = var.region

  default_tags {
    tags = { Project = "mdslab", Environment = "staging" }
  }
}

locals {
  name          = "mdslab-staging"
  bucket_prefix = "${var.bucket_prefix}mdslab-staging-"
}

module "keys" {
  source = "../../modules/keys"
  name   = local.name
}

module "network" {
  source             = "../../modules/network"
  name               = local.name
  cidr_block         = "10.41.0.0/16"
  availability_zones = ["${var.region}a", "${var.region}b"]
  single_nat_gateway = true
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
  broker_count         = 2
  broker_instance_type = "kafka.m7g.large"
  broker_volume_gb     = 100
  replication_factor   = 2
}

module "database" {
  #checkov:skip=CKV_AWS_157:staging runs a single-AZ database (multi_az = false) to halve its cost; prod sets multi_az
  #checkov:skip=CKV_AWS_293:staging is rebuilt from prod's shape at will (deletion_protection = false); prod sets it
  source                = "../../modules/database"
  name                  = local.name
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids
  client_cidr_block     = module.network.vpc_cidr_block
  kms_key_arn           = module.keys.key_arn
  instance_class        = "db.t4g.large"
  multi_az              = false
  deletion_protection   = false
  backup_retention_days = 7
}

module "compute" {
  source              = "../../modules/compute"
  name                = local.name
  subnet_ids          = module.network.private_subnet_ids
  kms_key_arn         = module.keys.key_arn
  node_instance_types = ["m7i.2xlarge"]
  node_min_size       = 2
  node_desired_size   = 2
  node_max_size       = 6
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
  max_workers       = 5
  force_destroy     = false
}

module "api" {
  #checkov:skip=CKV_AWS_150:staging load balancers are rebuilt at will (deletion_protection = false); prod sets it
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
  desired_count           = 2
  deletion_protection     = false
}
