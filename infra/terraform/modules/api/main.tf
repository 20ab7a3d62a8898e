# The ingest API as an ECS Fargate service behind an internal Application Load Balancer, running the same
# `mdslab serve` as on a laptop (every route: ingest, predict, RAG, SQL, the LLM gateway, /metrics).
#
# Why a container service rather than reusing infra/sam's Lambda: the Lambda carries the two ingest routes
# only, and a long-lived process keeps one idempotent Kafka producer (and its connections) across requests,
# which steady ingest wants; infra/sam remains the serverless option for spiky traffic, owned by SAM, so
# two tools never manage the same function.
#
# TLS ends at the load balancer (HTTPS only, TLS 1.2+, invalid headers dropped, access logs to the lab's
# logging bucket); the tasks have no public address and a read-only root filesystem. The image comes from
# ECR with immutable tags and a scan on every push; the API key comes from Secrets Manager.

data "aws_region" "current" {}

locals {
  container = "api"
  port      = 8000
  # Producing needs the cluster and its topics: arn:...:cluster/<name>/<uuid> -> arn:...:topic/<name>/<uuid>/*
  kafka_topics = "${replace(var.kafka_cluster_arn, ":cluster/", ":topic/")}/*"
}

resource "aws_ecr_repository" "api" {
  name                 = "${var.name}/api"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = var.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "api" {
  repository = aws_ecr_repository.api.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the newest 30 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 30 }
      action       = { type = "expire" }
    }]
  })
}

resource "aws_secretsmanager_secret" "api_key" {
  #checkov:skip=CKV2_AWS_57:The API key is shared with ingest clients, so it is rotated by putting a new version and redeploying the clients, not by a rotation Lambda
  name        = "${var.name}/api-key"
  description = "MDSLAB_API__API_KEY: the key ingest clients send as X-API-Key (set its value out of band)"
  kms_key_id  = var.kms_key_arn
}

resource "aws_cloudwatch_log_group" "api" {
  name              = "/mdslab/${var.name}/api"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_ecs_cluster" "this" {
  name = var.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
}

data "aws_iam_policy_document" "tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

# The execution role pulls the image, writes logs and reads the API key for the container.
resource "aws_iam_role" "execution" {
  name               = "${var.name}-api-execution"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

data "aws_iam_policy_document" "execution_secret" {
  statement {
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.api_key.arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
}

resource "aws_iam_role_policy" "execution_secret" {
  name   = "read-api-key"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution_secret.json
}

# The task role is what the API itself may do: produce to the lab's Kafka topics.
resource "aws_iam_role" "task" {
  name               = "${var.name}-api-task"
  assume_role_policy = data.aws_iam_policy_document.tasks_assume.json
}

data "aws_iam_policy_document" "task" {
  statement {
    actions   = ["kafka-cluster:Connect", "kafka-cluster:DescribeCluster"]
    resources = [var.kafka_cluster_arn]
  }
  statement {
    actions   = ["kafka-cluster:DescribeTopic", "kafka-cluster:WriteData", "kafka-cluster:WriteDataIdempotently"]
    resources = [local.kafka_topics]
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "produce-events"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

resource "aws_ecs_task_definition" "api" {
  family                   = "${var.name}-api"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # The state dir (the lab's logs and caches) on the task's ephemeral storage: the root filesystem is read-only.
  volume {
    name = "state"
  }

  container_definitions = jsonencode([{
    name                   = local.container
    image                  = "${aws_ecr_repository.api.repository_url}:${var.image_tag}"
    command                = ["mdslab", "serve"]
    essential              = true
    readonlyRootFilesystem = true
    privileged             = false
    portMappings           = [{ containerPort = local.port, protocol = "tcp" }]
    mountPoints            = [{ sourceVolume = "state", containerPath = "/var/lib/mdslab" }]
    environment = [
      { name = "MDSLAB_PROFILE", value = "services" },
      { name = "MDSLAB_STATE_DIR", value = "/var/lib/mdslab" },
      { name = "MDSLAB_API__HOST", value = "0.0.0.0" },
      { name = "MDSLAB_API__PORT", value = tostring(local.port) },
      { name = "MDSLAB_KAFKA__BOOTSTRAP_SERVERS", value = var.kafka_bootstrap_servers },
      { name = "MDSLAB_KAFKA__TOPIC_PREFIX", value = var.kafka_topic_prefix },
    ]
    secrets = [{ name = "MDSLAB_API__API_KEY", valueFrom = aws_secretsmanager_secret.api_key.arn }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.api.name
        awslogs-region        = data.aws_region.current.region
        awslogs-stream-prefix = "api"
      }
    }
  }])
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-api-alb"
  description = "The API's internal load balancer"
  vpc_id      = var.vpc_id

  ingress {
    description = "HTTPS from the VPC"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [var.client_cidr_block]
  }

  egress {
    description = "To the API tasks"
    from_port   = local.port
    to_port     = local.port
    protocol    = "tcp"
    cidr_blocks = [var.client_cidr_block]
  }
}

resource "aws_security_group" "tasks" {
  name        = "${var.name}-api-tasks"
  description = "The API's Fargate tasks"
  vpc_id      = var.vpc_id

  ingress {
    description     = "From the load balancer only"
    from_port       = local.port
    to_port         = local.port
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }

  egress {
    description = "HTTPS to ECR, Secrets Manager and CloudWatch through NAT"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "Kafka (TLS + IAM) inside the VPC"
    from_port   = 9098
    to_port     = 9098
    protocol    = "tcp"
    cidr_blocks = [var.client_cidr_block]
  }
}

resource "aws_lb" "api" {
  name                       = "${var.name}-api"
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = var.subnet_ids
  security_groups            = [aws_security_group.alb.id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection

  access_logs {
    bucket  = var.access_log_bucket
    prefix  = "alb"
    enabled = true
  }
}

resource "aws_lb_target_group" "api" {
  #checkov:skip=CKV_AWS_378:TLS ends at the load balancer; the hop to the task stays inside the VPC's private subnets, and `mdslab serve` speaks plain HTTP
  name        = "${var.name}-api"
  port        = local.port
  protocol    = "HTTP"
  target_type = "ip"
  vpc_id      = var.vpc_id

  health_check {
    path    = "/healthz"
    matcher = "200"
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.api.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = "ELBSecurityPolicy-TLS13-1-2-2021-06"
  certificate_arn   = var.certificate_arn

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.api.arn
  }
}

resource "aws_ecs_service" "api" {
  name             = "api"
  cluster          = aws_ecs_cluster.this.id
  task_definition  = aws_ecs_task_definition.api.arn
  desired_count    = var.desired_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  network_configuration {
    subnets          = var.subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.api.arn
    container_name   = local.container
    container_port   = local.port
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_lb_listener.https]
}
