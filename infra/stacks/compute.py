"""Where the chunk workers run: AWS Batch, with a GPU compute environment (EC2, scales to zero)
and a CPU one (Fargate), a queue for each and a worker job definition for each
(posereel.resources.WORKERS); the workflow submits jobs with batch:submitJob.sync. Both run the
same entry point (posereel.resources) with the same settings. The stack also offers a way to run a
one-off container on a schedule on the CPU queue (the ClamAV refresh)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Size, Stack
from aws_cdk import aws_batch as batch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from aws_cdk.aws_ecr_assets import DockerImageAsset, Platform
from constructs import Construct

from infra.common import DOCKER_CONTEXT_EXCLUDE, REPO, log_group, suppress
from infra.config import EnvironmentConfig
from infra.stacks.storage import StorageStack, stage_role_name
from posereel.resources import (
    IMAGE_BUILD_ARGS,
    STAGE_COMMAND,
    STAGE_JOB,
    WORKER_ATTEMPTS,
    WORKER_COMMAND,
    WORKER_RETRY_RULES,
    WORKERS,
    ResourceNames,
    WorkerDevice,
)


@dataclass(frozen=True)
class ContainerJob:
    """A one-off container run on the CPU queue (Fargate)."""

    name: str
    image: ecs.ContainerImage
    role: iam.IRole
    vcpus: float
    memory_mib: int
    environment: dict[str, str]
    log_group: logs.ILogGroup
    stream_prefix: str
    timeout: Duration
    retry_attempts: int


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
        **kwargs: Any,
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
        self.workers_sg = ec2.SecurityGroup(
            self,
            "Workers",
            vpc=self.vpc,
            description="PoseReel workers: outbound only",
            allow_all_outbound=True,
        )
        self.public = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)

        # One role for both workers: read the upload, read/write work/ in the results bucket.
        self.worker_role = iam.Role(
            self,
            "WorkerRole",
            role_name=f"{names.prefix}-worker",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="PoseReel chunk worker: reads the scanned copy and the plan, writes chunk results",
        )
        storage.results.grant_read_write(self.worker_role, "work/*")
        # The stage job (posereel.resources.STAGE_JOB) runs scan, merge or compile for uploads too
        # large or long for their Lambdas: its role holds what those stages' functions hold
        # (PipelineStack grants both, in one place).
        self.stage_role = iam.Role(
            self,
            "StageRole",
            role_name=stage_role_name(names),
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="PoseReel stage job: scan, merge or compile of a long upload",
        )

        self.worker_environment = worker_environment
        self.images = {
            device: DockerImageAsset(
                self,
                f"{device.capitalize()}Image",
                directory=str(REPO),
                file=spec.image,
                build_args=IMAGE_BUILD_ARGS,
                exclude=DOCKER_CONTEXT_EXCLUDE,
                platform=Platform.LINUX_AMD64,
            )
            for device, spec in WORKERS.items()
        }
        self.job_logs = log_group(self, "WorkerLogs", config)
        self.workers = BatchWorkers(self, names=names, config=config)
        suppress(
            self,
            {
                "AwsSolutions-IAM4": "The container instance role policy "
                "(AmazonEC2ContainerServiceforEC2Role) and the ECS task execution policy are AWS managed; "
                "no narrower managed equivalent exists.",
                "AwsSolutions-IAM5": "Object-level S3 grants are scoped to the work/ prefix of the "
                "results bucket; ECR GetAuthorizationToken and log actions of the execution role need '*' "
                "(AWS).",
                "AwsSolutions-EC23": "Security group allows outbound only; the rule reported is the egress "
                "default.",
            },
        )


class BatchWorkers:
    """AWS Batch: a GPU queue on EC2 (spot or on demand), a CPU queue on Fargate."""

    def __init__(self, stack: ComputeStack, *, names: ResourceNames, config: EnvironmentConfig) -> None:
        cfg = config.workers
        self.gpu_environment = batch.ManagedEc2EcsComputeEnvironment(
            stack,
            "GpuEnvironment",
            vpc=stack.vpc,
            vpc_subnets=stack.public,
            security_groups=[stack.workers_sg],
            instance_types=[ec2.InstanceType(name) for name in cfg.gpu_instance_types],
            use_optimal_instance_classes=False,
            # Amazon Linux 2023 with the NVIDIA driver (Amazon Linux 2 reached end of support in 2026).
            images=[batch.EcsMachineImage(image_type=batch.EcsMachineImageType.ECS_AL2023_NVIDIA)],
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
            stack,
            "CpuEnvironment",
            vpc=stack.vpc,
            vpc_subnets=stack.public,
            security_groups=[stack.workers_sg],
            spot=cfg.cpu_spot,
            maxv_cpus=cfg.cpu_max_vcpus,
            replace_compute_environment=False,
        )
        self.gpu_queue = batch.JobQueue(
            stack,
            "GpuQueue",
            job_queue_name=names.job_queue("gpu"),
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.gpu_environment, order=1)
            ],
        )
        self.cpu_queue = batch.JobQueue(
            stack,
            "CpuQueue",
            job_queue_name=names.job_queue("cpu"),
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.cpu_environment, order=1)
            ],
        )
        timeout = Duration.seconds(config.chunk_timeout_s)
        # What both queues' workers share: the same entry point, size, role and settings.
        worker: dict[str, Any] = {
            "command": WORKER_COMMAND,
            "cpu": cfg.worker_vcpus,
            "memory": Size.mebibytes(cfg.worker_memory_mib),
            "job_role": stack.worker_role,
            "environment": stack.worker_environment,
        }
        # Crashes, OOM kills and lost (Spot) hosts run again; bad input and a missing GPU end.
        retry: dict[str, Any] = {"retry_attempts": WORKER_ATTEMPTS, "retry_strategies": worker_retries()}
        self.gpu_job_definition = batch.EcsJobDefinition(
            stack,
            "GpuJobDefinition",
            job_definition_name=names.job_definition("gpu"),
            timeout=timeout,
            **retry,
            container=batch.EcsEc2ContainerDefinition(
                stack,
                "GpuContainer",
                image=ecs.ContainerImage.from_docker_image_asset(stack.images["gpu"]),
                **worker,
                gpu=WORKERS["gpu"].gpus,
                logging=ecs.LogDriver.aws_logs(stream_prefix="gpu", log_group=stack.job_logs),
                readonly_root_filesystem=False,
            ),
        )
        self.cpu_job_definition = batch.EcsJobDefinition(
            stack,
            "CpuJobDefinition",
            job_definition_name=names.job_definition("cpu"),
            timeout=timeout,
            **retry,
            container=batch.EcsFargateContainerDefinition(
                stack,
                "CpuContainer",
                image=ecs.ContainerImage.from_docker_image_asset(stack.images["cpu"]),
                **worker,
                assign_public_ip=True,  # public subnets, no NAT: needed to pull from ECR
                ephemeral_storage_size=Size.gibibytes(40),
                fargate_platform_version=ecs.FargatePlatformVersion.LATEST,
                logging=ecs.LogDriver.aws_logs(stream_prefix="cpu", log_group=stack.job_logs),
            ),
        )
        # Long or large uploads' scan, merge and compile: the CPU worker's image on the CPU queue.
        self.stage_job_definition = batch.EcsJobDefinition(
            stack,
            "StageJobDefinition",
            job_definition_name=names.stage_job_definition,
            timeout=Duration.seconds(STAGE_JOB.timeout_s),
            retry_attempts=STAGE_JOB.attempts,
            container=batch.EcsFargateContainerDefinition(
                stack,
                "StageContainer",
                image=ecs.ContainerImage.from_docker_image_asset(stack.images["cpu"]),
                command=STAGE_COMMAND,
                cpu=STAGE_JOB.vcpus,
                memory=Size.mebibytes(STAGE_JOB.memory_mib),
                job_role=stack.stage_role,
                environment=stack.worker_environment,
                assign_public_ip=True,
                ephemeral_storage_size=Size.gibibytes(STAGE_JOB.disk_gib),
                fargate_platform_version=ecs.FargatePlatformVersion.LATEST,
                logging=ecs.LogDriver.aws_logs(stream_prefix="stage", log_group=stack.job_logs),
            ),
        )
        self._names = names
        self.job_queue_arns: dict[WorkerDevice, str] = {
            "gpu": self.gpu_queue.job_queue_arn,
            "cpu": self.cpu_queue.job_queue_arn,
        }
        self.job_definition_arns: dict[WorkerDevice, str] = {
            "gpu": self.gpu_job_definition.job_definition_arn,
            "cpu": self.cpu_job_definition.job_definition_arn,
        }
        self.stage_job_definition_arn = self.stage_job_definition.job_definition_arn

    def grant_workflow(self, role: iam.Role) -> None:
        stack = Stack.of(role)
        job_definition_arns = [
            stack.format_arn(service="batch", resource="job-definition", resource_name=f"{name}*")
            for name in [*map(self._names.job_definition, WORKERS), self._names.stage_job_definition]
        ]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["batch:SubmitJob"],
                resources=[self.gpu_queue.job_queue_arn, self.cpu_queue.job_queue_arn, *job_definition_arns],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["batch:TerminateJob"],
                resources=[stack.format_arn(service="batch", resource="job", resource_name="*")],
            )
        )
        role.add_to_policy(iam.PolicyStatement(actions=["batch:DescribeJobs"], resources=["*"]))
        _allow_sync_events(role, "StepFunctionsGetEventsForBatchJobsRule")

    def grant_watchdog(self, role: iam.Role) -> None:
        # ListJobs has no resource-level permissions: AWS requires "*".
        role.add_to_policy(iam.PolicyStatement(actions=["batch:ListJobs"], resources=["*"]))

    def scheduled_target(
        self, scope: Construct, construct_id: str, job: ContainerJob, *, dead_letter_queue: sqs.IQueue
    ) -> events.IRuleTarget:
        definition = batch.EcsJobDefinition(
            scope,
            construct_id,
            job_definition_name=job.name,
            timeout=job.timeout,
            retry_attempts=job.retry_attempts,
            container=batch.EcsFargateContainerDefinition(
                scope,
                f"{construct_id}Container",
                image=job.image,
                cpu=job.vcpus,
                memory=Size.mebibytes(job.memory_mib),
                job_role=job.role,
                assign_public_ip=True,
                environment=job.environment,
                logging=ecs.LogDriver.aws_logs(stream_prefix=job.stream_prefix, log_group=job.log_group),
            ),
        )
        return targets.BatchJob(
            self.cpu_queue.job_queue_arn,
            self.cpu_queue,
            definition.job_definition_arn,
            definition,
            job_name=job.name,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=2,
        )


def worker_retries() -> list[batch.RetryStrategy]:
    """posereel.resources.WORKER_RETRY_RULES as CDK retry strategies."""
    return [
        batch.RetryStrategy.of(
            batch.Action[rule.action],
            batch.Reason.custom(on_exit_code=rule.on_exit_code, on_status_reason=rule.on_status_reason),
        )
        for rule in WORKER_RETRY_RULES
    ]


def _allow_sync_events(role: iam.Role, rule: str) -> None:
    """A .sync integration waits on the managed EventBridge rule Step Functions keeps for it."""
    stack = Stack.of(role)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[stack.format_arn(service="events", resource="rule", resource_name=rule)],
        )
    )
