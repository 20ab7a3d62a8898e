output "cluster_name" {
  description = "For `aws eks update-kubeconfig` before installing KubeRay with Helm"
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "The private Kubernetes API endpoint"
  value       = aws_eks_cluster.this.endpoint
}

output "node_role_arn" {
  description = "The nodes' role: grant it the lake buckets and the Kafka cluster (or use EKS Pod Identity)"
  value       = aws_iam_role.node.arn
}
