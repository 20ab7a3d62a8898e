# The lab's Kafka: Amazon MSK (provisioned, ZooKeeper-less KRaft on 3.9), brokers spread over the private
# subnets' zones. TLS only between clients and brokers and between brokers, storage encrypted with the
# lab's key, clients authenticated by IAM (SASL/OAUTHBEARER on port 9098), broker logs to CloudWatch.
#
# Topics are not Terraform's: `mdslab up` creates the lab's event topics (with MDSLAB_KAFKA__TOPIC_PREFIX
# and MDSLAB_KAFKA__DEFAULT_PARTITIONS) like it does on the embedded broker, so auto-creation is off and a
# producer's typo fails instead of making a topic.
#
# Today the lab's Kafka settings have no TLS or SASL options (docs/deep-dives/cloud.md): this cluster is
# the target shape, and the lab's clients reach it once those settings exist.

resource "aws_msk_configuration" "this" {
  name           = "${var.name}-kafka"
  kafka_versions = [var.kafka_version]

  server_properties = <<-PROPERTIES
    auto.create.topics.enable=false
    default.replication.factor=${var.replication_factor}
    min.insync.replicas=${var.replication_factor > 2 ? 2 : 1}
    unclean.leader.election.enable=false
    log.retention.hours=${var.retention_hours}
  PROPERTIES
}

resource "aws_cloudwatch_log_group" "brokers" {
  name              = "/mdslab/${var.name}/msk-brokers"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_security_group" "brokers" {
  name        = "${var.name}-kafka"
  description = "MSK brokers: Kafka over TLS with IAM auth from inside the VPC"
  vpc_id      = var.vpc_id

  ingress {
    description = "Kafka clients (TLS + IAM) from the VPC"
    from_port   = 9098
    to_port     = 9098
    protocol    = "tcp"
    cidr_blocks = [var.client_cidr_block]
  }

  egress {
    description = "Broker-to-broker replication inside the VPC"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = [var.client_cidr_block]
  }
}

resource "aws_msk_cluster" "this" {
  cluster_name           = var.name
  kafka_version          = var.kafka_version
  number_of_broker_nodes = var.broker_count
  enhanced_monitoring    = "PER_TOPIC_PER_BROKER"

  broker_node_group_info {
    instance_type   = var.broker_instance_type
    client_subnets  = var.subnet_ids
    security_groups = [aws_security_group.brokers.id]

    storage_info {
      ebs_storage_info {
        volume_size = var.broker_volume_gb
      }
    }

    connectivity_info {
      public_access {
        type = "DISABLED"
      }
    }
  }

  configuration_info {
    arn      = aws_msk_configuration.this.arn
    revision = aws_msk_configuration.this.latest_revision
  }

  encryption_info {
    encryption_at_rest_kms_key_arn = var.kms_key_arn
    encryption_in_transit {
      client_broker = "TLS"
      in_cluster    = true
    }
  }

  client_authentication {
    unauthenticated = false
    sasl {
      iam = true
    }
  }

  # The brokers' JMX and node exporters, for the lab's Prometheus rules (observability/).
  open_monitoring {
    prometheus {
      jmx_exporter {
        enabled_in_broker = true
      }
      node_exporter {
        enabled_in_broker = true
      }
    }
  }

  logging_info {
    broker_logs {
      cloudwatch_logs {
        enabled   = true
        log_group = aws_cloudwatch_log_group.brokers.name
      }
    }
  }
}
