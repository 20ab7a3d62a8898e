output "bootstrap_brokers_iam" {
  description = "host:9098 list for TLS + IAM clients: feeds MDSLAB_KAFKA__BOOTSTRAP_SERVERS"
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "cluster_arn" {
  description = "The cluster, for the kafka-cluster:* IAM permissions of producers and consumers"
  value       = aws_msk_cluster.this.arn
}

output "security_group_id" {
  description = "The brokers' security group"
  value       = aws_security_group.brokers.id
}
