output "vpc_id" {
  description = "The lab's VPC"
  value       = aws_vpc.this.id
}

output "vpc_cidr_block" {
  description = "The VPC's address range: the services' security groups admit clients from it"
  value       = aws_vpc.this.cidr_block
}

output "private_subnet_ids" {
  description = "One private subnet per zone, in zone order"
  value       = aws_subnet.private[*].id
}
