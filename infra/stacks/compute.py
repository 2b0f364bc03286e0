"""Where the chunk workers run, with the VPC, role and images both backends share. The config's
worker_backend picks one:

batch  AWS Batch: a GPU compute environment (EC2, scales to zero) and a CPU one (Fargate), a queue
       for each, worker job definitions; the workflow submits jobs with batch:submitJob.sync.
ecs    An ECS cluster: a GPU capacity provider (an EC2 Auto Scaling group that ECS managed scaling
       takes to zero) and Fargate for CPU, worker task definitions; the workflow runs tasks with
       ecs:runTask.sync (infra/workflow.py derives those two states from the same file).

Both run the same images with the same entry point (posereel.resources) and settings, and offer the
pipeline the same things: the workflow's substitutions, the workflow role's permissions, and a way
to run a one-off container on a schedule (the ClamAV refresh)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from aws_cdk import Duration, Fn, Size, Stack
from aws_cdk import aws_autoscaling as autoscaling
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
from infra.stacks.storage import StorageStack
from infra.workflow import WORKER_CONTAINER
from posereel.resources import WORKER_COMMAND, ResourceNames


@dataclass(frozen=True)
class ContainerJob:
    """A one-off container run on the backend's CPU capacity (Fargate)."""

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


class Workers(Protocol):
    backend: str
    # Substitution keys of the workflow definition that name the workers' resources.
    substitutions: dict[str, str]

    def grant_workflow(self, role: iam.Role) -> None:
        """What the workflow role needs to run a chunk job and wait for it."""

    def grant_watchdog(self, role: iam.Role) -> None:
        """What the watchdog needs to see the chunk jobs that wait for capacity."""

    def scheduled_target(
        self, scope: Construct, construct_id: str, job: ContainerJob, *, dead_letter_queue: sqs.IQueue
    ) -> events.IRuleTarget:
        """An EventBridge target that runs the job on the backend's CPU capacity."""


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
            description="PoseReel chunk worker: reads uploads and plans, writes chunk results",
        )
        storage.uploads.grant_read(self.worker_role, "uploads/*")
        storage.results.grant_read_write(self.worker_role, "work/*")

        self.worker_environment = {"POSEREEL_MODEL_DIR": "/opt/models", **worker_environment}
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
        self.workers: Workers = (
            BatchWorkers(self, names=names, config=config)
            if config.worker_backend == "batch"
            else EcsWorkers(self, names=names, config=config)
        )
        suppress(
            self,
            {
                "AwsSolutions-IAM4": "The container instance role policy (Batch: "
                "AmazonEC2ContainerServiceforEC2Role) and the ECS task execution policy are AWS managed; no "
                "narrower managed equivalent exists.",
                "AwsSolutions-IAM5": "Object-level S3 grants are scoped to the uploads/ and work/ "
                "prefixes of our buckets; ECR GetAuthorizationToken and log actions of the execution role "
                "need '*' (AWS); container instances register with our cluster only (ecs:Submit* is "
                "aws-cdk-lib's minimal set).",
                "AwsSolutions-EC23": "Security group allows outbound only; the rule reported is the egress "
                "default.",
            },
        )


class BatchWorkers:
    """AWS Batch: a GPU queue on EC2 (spot or on demand), a CPU queue on Fargate."""

    backend = "batch"

    def __init__(self, stack: ComputeStack, *, names: ResourceNames, config: EnvironmentConfig) -> None:
        cfg = config.workers
        assert cfg.cpu_max_vcpus is not None  # the config requires it for batch
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
            job_queue_name=names.gpu_job_queue,
            compute_environments=[
                batch.OrderedComputeEnvironment(compute_environment=self.gpu_environment, order=1)
            ],
        )
        self.cpu_queue = batch.JobQueue(
            stack,
            "CpuQueue",
            job_queue_name=names.cpu_job_queue,
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
        self.gpu_job_definition = batch.EcsJobDefinition(
            stack,
            "GpuJobDefinition",
            job_definition_name=names.gpu_job_definition,
            timeout=timeout,
            retry_attempts=2,
            container=batch.EcsEc2ContainerDefinition(
                stack,
                "GpuContainer",
                image=ecs.ContainerImage.from_docker_image_asset(stack.gpu_image),
                **worker,
                gpu=1,
                logging=ecs.LogDriver.aws_logs(stream_prefix="gpu", log_group=stack.job_logs),
                readonly_root_filesystem=False,
            ),
        )
        self.cpu_job_definition = batch.EcsJobDefinition(
            stack,
            "CpuJobDefinition",
            job_definition_name=names.cpu_job_definition,
            timeout=timeout,
            retry_attempts=2,
            container=batch.EcsFargateContainerDefinition(
                stack,
                "CpuContainer",
                image=ecs.ContainerImage.from_docker_image_asset(stack.cpu_image),
                **worker,
                assign_public_ip=True,  # public subnets, no NAT: needed to pull from ECR
                ephemeral_storage_size=Size.gibibytes(40),
                fargate_platform_version=ecs.FargatePlatformVersion.LATEST,
                logging=ecs.LogDriver.aws_logs(stream_prefix="cpu", log_group=stack.job_logs),
            ),
        )
        self._names = names
        self.substitutions = {
            "GpuJobQueueArn": self.gpu_queue.job_queue_arn,
            "CpuJobQueueArn": self.cpu_queue.job_queue_arn,
            "GpuJobDefinitionArn": self.gpu_job_definition.job_definition_arn,
            "CpuJobDefinitionArn": self.cpu_job_definition.job_definition_arn,
        }

    def grant_workflow(self, role: iam.Role) -> None:
        stack = Stack.of(role)
        job_definition_arns = [
            stack.format_arn(service="batch", resource="job-definition", resource_name=f"{name}*")
            for name in (self._names.gpu_job_definition, self._names.cpu_job_definition)
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


class EcsWorkers:
    """An ECS cluster: GPU tasks on an EC2 Auto Scaling group behind a capacity provider (managed
    scaling takes it to zero instances when no task runs), CPU tasks on Fargate."""

    backend = "ecs"

    def __init__(self, stack: ComputeStack, *, names: ResourceNames, config: EnvironmentConfig) -> None:
        cfg = config.workers
        self._stack = stack
        self.cluster_name = names.workers_cluster
        self.cluster = ecs.Cluster(
            stack,
            "Cluster",
            cluster_name=self.cluster_name,
            vpc=stack.vpc,
            enable_fargate_capacity_providers=True,
        )
        suppress(
            self.cluster,
            {
                "AwsSolutions-ECS4": "Container Insights is billed per metric even while the cluster is "
                "idle; the workflow's logs and the stuck-task alarm cover the chunk tasks.",
            },
        )
        instance_role = iam.Role(
            stack,
            "GpuInstanceRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="PoseReel GPU container instances: register with the workers cluster",
        )
        launch_template = ec2.LaunchTemplate(
            stack,
            "GpuLaunchTemplate",
            machine_image=ecs.EcsOptimizedImage.amazon_linux2023(ecs.AmiHardwareType.GPU),  # AL2 ends 2026-06
            role=instance_role,
            security_group=stack.workers_sg,
            user_data=ec2.UserData.for_linux(),  # the cluster adds ECS_CLUSTER=... to it
            require_imdsv2=True,
            associate_public_ip_address=True,  # public subnets, no NAT: the agent reaches ECS and ECR
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        100,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        self.gpu_instances = autoscaling.AutoScalingGroup(
            stack,
            "GpuInstances",
            vpc=stack.vpc,
            vpc_subnets=stack.public,
            min_capacity=0,
            max_capacity=cfg.gpu_max_instances,
            mixed_instances_policy=autoscaling.MixedInstancesPolicy(
                launch_template=launch_template,
                launch_template_overrides=[
                    autoscaling.LaunchTemplateOverrides(instance_type=ec2.InstanceType(name))
                    for name in cfg.gpu_instance_types
                ],
                instances_distribution=autoscaling.InstancesDistribution(
                    on_demand_base_capacity=0,
                    on_demand_percentage_above_base_capacity=0 if cfg.gpu_spot else 100,
                    spot_allocation_strategy=(
                        autoscaling.SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED if cfg.gpu_spot else None
                    ),
                ),
            ),
        )
        suppress(
            self.gpu_instances,
            {
                "AwsSolutions-AS3": "Scaling is ECS managed scaling's: instances come and go with the chunk "
                "tasks; a failed task falls back to Fargate and the stuck-task alarm reports waits.",
            },
        )
        self.gpu_capacity = ecs.AsgCapacityProvider(
            stack,
            "GpuCapacity",
            capacity_provider_name=f"{names.prefix}-gpu",
            auto_scaling_group=self.gpu_instances,
            enable_managed_scaling=True,
            target_capacity_percent=100,
            enable_managed_termination_protection=True,  # never take away an instance with a task on it
            machine_image_type=ecs.MachineImageType.AMAZON_LINUX_2,
        )
        self.cluster.add_asg_capacity_provider(self.gpu_capacity)

        cpu_units = int(cfg.worker_vcpus * 1024)
        container: dict[str, Any] = dict(
            environment=stack.worker_environment,
            essential=True,
            # No command: each run passes the worker's arguments (WORKER_COMMAND, bound) as an override.
        )
        self.gpu_task = ecs.Ec2TaskDefinition(
            stack,
            "GpuTaskDefinition",
            family=names.gpu_job_definition,
            network_mode=ecs.NetworkMode.BRIDGE,  # the instance's network: it has the public IP
            task_role=stack.worker_role,
        )
        self.gpu_task.add_container(
            WORKER_CONTAINER,
            image=ecs.ContainerImage.from_docker_image_asset(stack.gpu_image),
            cpu=cpu_units,
            memory_limit_mib=cfg.worker_memory_mib,
            gpu_count=1,
            logging=ecs.LogDriver.aws_logs(stream_prefix="gpu", log_group=stack.job_logs),
            **container,
        )
        self.cpu_task = ecs.FargateTaskDefinition(
            stack,
            "CpuTaskDefinition",
            family=names.cpu_job_definition,
            cpu=cpu_units,
            memory_limit_mib=cfg.worker_memory_mib,
            ephemeral_storage_gib=40,
            task_role=stack.worker_role,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.cpu_task.add_container(
            WORKER_CONTAINER,
            image=ecs.ContainerImage.from_docker_image_asset(stack.cpu_image),
            logging=ecs.LogDriver.aws_logs(stream_prefix="cpu", log_group=stack.job_logs),
            **container,
        )
        for task in (self.gpu_task, self.cpu_task):
            suppress(
                task,
                {
                    "AwsSolutions-ECS2": "The environment holds resource names and limits (POSEREEL_*), no "
                    "secrets; the worker reads them as typed settings at start."
                },
            )
        self._names = names
        self.substitutions = {
            "WorkerClusterArn": self.cluster.cluster_arn,
            "GpuTaskDefinitionArn": self.gpu_task.task_definition_arn,
            "CpuTaskDefinitionArn": self.cpu_task.task_definition_arn,
            "GpuCapacityProvider": self.gpu_capacity.capacity_provider_name,
            "CpuCapacityProvider": "FARGATE_SPOT" if cfg.cpu_spot else "FARGATE",
            "WorkerSubnetIds": Fn.join(
                ",", stack.vpc.select_subnets(subnet_type=ec2.SubnetType.PUBLIC).subnet_ids
            ),
            "WorkerSecurityGroupId": stack.workers_sg.security_group_id,
        }

    def grant_workflow(self, role: iam.Role) -> None:
        stack = Stack.of(role)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:RunTask"],
                resources=[
                    stack.format_arn(service="ecs", resource="task-definition", resource_name=f"{family}:*")
                    for family in (self._names.gpu_job_definition, self._names.cpu_job_definition)
                ],
                conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:StopTask", "ecs:DescribeTasks"],
                resources=[
                    stack.format_arn(service="ecs", resource="task", resource_name=f"{self.cluster_name}/*")
                ],
            )
        )
        # RunTask hands the tasks their roles.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[
                    self._stack.worker_role.role_arn,
                    self.gpu_task.obtain_execution_role().role_arn,
                    self.cpu_task.obtain_execution_role().role_arn,
                ],
                conditions={"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
            )
        )
        _allow_sync_events(role, "StepFunctionsGetEventsForECSTaskRule")

    def grant_watchdog(self, role: iam.Role) -> None:
        stack = Stack.of(role)
        # ListTasks is authorized on "*" when no container instance is named; the ecs:cluster
        # condition keeps it to our cluster (as aws-cdk-lib's own drain hook does).
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:ListTasks"],
                resources=["*"],
                conditions={"ArnEquals": {"ecs:cluster": self.cluster.cluster_arn}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ecs:DescribeTasks"],
                resources=[
                    stack.format_arn(service="ecs", resource="task", resource_name=f"{self.cluster_name}/*")
                ],
            )
        )

    def scheduled_target(
        self, scope: Construct, construct_id: str, job: ContainerJob, *, dead_letter_queue: sqs.IQueue
    ) -> events.IRuleTarget:
        # ECS has no task timeout and no retry of a failed task: job.timeout and job.retry_attempts are
        # Batch's; a failed refresh is simply repeated at the next scheduled run.
        task = ecs.FargateTaskDefinition(
            scope,
            construct_id,
            family=job.name,
            cpu=int(job.vcpus * 1024),
            memory_limit_mib=job.memory_mib,
            task_role=job.role,
        )
        task.add_container(
            "job",
            image=job.image,
            environment=job.environment,
            logging=ecs.LogDriver.aws_logs(stream_prefix=job.stream_prefix, log_group=job.log_group),
        )
        suppress(task, {"AwsSolutions-ECS2": "The environment holds a bucket URI, no secrets."})
        return targets.EcsTask(
            cluster=self.cluster,
            task_definition=task,
            launch_type=ecs.LaunchType.FARGATE,
            subnet_selection=self._stack.public,
            security_groups=[self._stack.workers_sg],
            assign_public_ip=True,
            dead_letter_queue=dead_letter_queue,
            retry_attempts=2,
        )


def _allow_sync_events(role: iam.Role, rule: str) -> None:
    """A .sync integration waits on the managed EventBridge rule Step Functions keeps for it."""
    stack = Stack.of(role)
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["events:PutTargets", "events:PutRule", "events:DescribeRule"],
            resources=[stack.format_arn(service="events", resource="rule", resource_name=rule)],
        )
    )
