"""AWS Batch: a GPU compute environment (EC2, scales to zero) and a CPU one (Fargate), a queue for
each, and the worker job definitions built from containers/worker. Also the VPC they run in."""

from __future__ import annotations

from typing import Any

from aws_cdk import Duration, Size, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_iam as iam
from aws_cdk.aws_ecr_assets import DockerImageAsset, Platform
from constructs import Construct

from infra.common import DOCKER_CONTEXT_EXCLUDE, REPO, log_group, suppress
from infra.config import EnvironmentConfig
from infra.stacks.storage import StorageStack
from posereel.resources import WORKER_COMMAND, ResourceNames


class ComputeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        config: EnvironmentConfig,
        storage: StorageStack,
        worker_environment: dict[str, str],
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._config = config
        # Public subnets only: no NAT gateway, so nothing is billed while no job runs. Workers
        # reach S3 and DynamoDB through gateway endpoints, ECR and CloudWatch over the internet.
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            nat_gateways=0,
            subnet_configuration=[ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC)],
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
                "DynamoDB": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.DYNAMODB),
            },
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group(self, "FlowLogs", config)),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        workers_sg = ec2.SecurityGroup(
            self,
            "Workers",
            vpc=self.vpc,
            description="PoseReel workers: outbound only",
            allow_all_outbound=True,
        )
        public = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)

        cfg = config.batch
        self.gpu_environment = batch.ManagedEc2EcsComputeEnvironment(
            self,
            "GpuEnvironment",
            vpc=self.vpc,
            vpc_subnets=public,
            security_groups=[workers_sg],
            instance_types=[ec2.InstanceType(name) for name in cfg.gpu_instance_types],
            use_optimal_instance_classes=False,
            images=[batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2_NVIDIA)],
            spot=cfg.gpu_spot,
            allocation_strategy=(
                batch.AllocationStrategy.SPOT_PRICE_CAPACITY_OPTIMIZED
                if cfg.gpu_spot
                else batch.AllocationStrategy.BEST_FIT_PROGRESSIVE
            ),
            minv_cpus=0,  # scales to zero between videos
            maxv_cpus=cfg.gpu_max_vcpus,
            update_to_latest_image_version=True,
            replace_compute_environment=False,
        )
        self.cpu_environment = batch.FargateComputeEnvironment(
            self,
            "CpuEnvironment",
            vpc=self.vpc,
            vpc_subnets=public,
            security_groups=[workers_sg],
            spot=cfg.cpu_spot,
            maxv_cpus=cfg.cpu_max_vcpus,
            replace_compute_environment=False,
        )
        self.gpu_queue = batch.JobQueue(
            self,
            "GpuQueue",
            job_queue_name=names.gpu_job_queue,
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.gpu_environment, order=1)
            ],
        )
        self.cpu_queue = batch.JobQueue(
            self,
            "CpuQueue",
            job_queue_name=names.cpu_job_queue,
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.cpu_environment, order=1)
            ],
        )

        # One role for both workers: read the upload, read/write work/ in the results bucket.
        self.worker_role = iam.Role(
            self,
            "WorkerRole",
            role_name=f"{names.prefix}-worker",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="PoseReel chunk worker: reads uploads and plans, writes chunk results",
        )
        storage.uploads.grant_read(self.worker_role, "uploads/*")
        storage.results.grant_read_write(self.worker_role, "work/*")

        image_env = {"POSEREEL_MODEL_DIR": "/opt/models", **worker_environment}
        self.gpu_image, self.cpu_image = (
            DockerImageAsset(
                self,
                f"{kind.capitalize()}Image",
                directory=str(REPO),
                file=f"containers/worker/Dockerfile.{kind}",
                exclude=DOCKER_CONTEXT_EXCLUDE,
                platform=Platform.LINUX_AMD64,
            )
            for kind in ("gpu", "cpu")
        )
        self.job_logs = log_group(self, "WorkerLogs", config)
        timeout = Duration.seconds(config.chunk_timeout_s)
        # What both queues' workers share: the same entry point, size, role and settings.
        worker: dict[str, Any] = {
            "command": WORKER_COMMAND,
            "cpu": cfg.worker_vcpus,
            "memory": Size.mebibytes(cfg.worker_memory_mib),
            "job_role": self.worker_role,
            "environment": image_env,
        }
        self.gpu_job_definition = batch.EcsJobDefinition(
            self,
            "GpuJobDefinition",
            job_definition_name=names.gpu_job_definition,
            timeout=timeout,
            retry_attempts=2,
            container=batch.EcsEc2ContainerDefinition(
                self,
                "GpuContainer",
                image=ecs.ContainerImage.from_docker_image_asset(self.gpu_image),
                **worker,
                gpu=1,
                logging=ecs.LogDriver.aws_logs(stream_prefix="gpu", log_group=self.job_logs),
                readonly_root_filesystem=False,
            ),
        )
        self.cpu_job_definition = batch.EcsJobDefinition(
            self,
            "CpuJobDefinition",
            job_definition_name=names.cpu_job_definition,
            timeout=timeout,
            retry_attempts=2,
            container=batch.EcsFargateContainerDefinition(
                self,
                "CpuContainer",
                image=ecs.ContainerImage.from_docker_image_asset(self.cpu_image),
                **worker,
                assign_public_ip=True,  # public subnets, no NAT: needed to pull from ECR
                ephemeral_storage_size=Size.gibibytes(40),
                fargate_platform_version=ecs.FargatePlatformVersion.LATEST,
                logging=ecs.LogDriver.aws_logs(stream_prefix="cpu", log_group=self.job_logs),
            ),
        )
        suppress(
            self,
            {
                "AwsSolutions-IAM4": "Batch's documented instance role policy "
                "AmazonEC2ContainerServiceforEC2Role "
                "and the ECS task execution policy are AWS managed; no narrower managed equivalent exists.",
                "AwsSolutions-IAM5": "Object-level S3 grants are scoped to the uploads/ and work/ prefixes "
                "of our "
                "buckets; ECR GetAuthorizationToken and log actions of the execution role need '*' (AWS).",
                "AwsSolutions-EC23": "Security group allows outbound only; the rule reported is the egress "
                "default.",
            },
        )
