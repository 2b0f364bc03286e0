"""The functions, the state machine (statemachine/pipeline.asl.json with DefinitionSubstitutions),
the EventBridge rules that start and finalize jobs, the bus that carries "PoseReel Job State
Change" events to the owners' own rules, the scheduled ClamAV signature refresh, and the watchdog
that measures every 5 minutes how long chunk jobs wait for capacity."""

from __future__ import annotations

import re

from aws_cdk import (
    ArnFormat,
    CfnOutput,
    Duration,
    Stack,
)
from aws_cdk import (
    aws_ecs as ecs,
)
from aws_cdk import (
    aws_events as events,
)
from aws_cdk import (
    aws_events_targets as targets,
)
from aws_cdk import (
    aws_iam as iam,
)
from aws_cdk import (
    aws_sqs as sqs,
)
from aws_cdk import (
    aws_stepfunctions as sfn,
)
from aws_cdk.aws_ecr_assets import DockerImageAsset, Platform
from constructs import Construct

from infra.common import DOCKER_CONTEXT_EXCLUDE, REPO, log_group, suppress
from infra.config import EnvironmentConfig
from infra.functions import FunctionFactory
from infra.stacks.compute import ComputeStack, ContainerJob
from infra.stacks.storage import StorageStack
from posereel.resources import (
    AWAITING_UPLOAD_INDEX,
    BY_OWNER_INDEX,
    FUNCTIONS,
    IMAGE_BUILD_ARGS,
    LAMBDA_PYTHON,
    METRICS_NAMESPACE,
    RECUT_RETRIES,
    WORKFLOW_FILE,
    WORKFLOW_FUNCTIONS,
    ResourceNames,
    workflow_substitutions,
)

CLAMAV_PREFIX = "clamav/"
WATCHDOG_EVERY = Duration.minutes(5)
# Every end of an execution: finalize reconciles the bad ones and has every ended job announced.
ENDED_STATUSES = ["SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"]
_COLON = ArnFormat.COLON_RESOURCE_NAME


def state_machine_arn(stack: Stack, names: ResourceNames) -> str:
    """Built from the name, not referenced: the start and finalize functions need it and the state
    machine needs their ARNs, so a reference would be a cycle."""
    return stack.format_arn(
        service="states",
        resource="stateMachine",
        resource_name=names.state_machine,
        arn_format=_COLON,
    )


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        config: EnvironmentConfig,
        storage: StorageStack,
        compute: ComputeStack,
        settings_environment: dict[str, str],
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.state_machine_arn = state_machine_arn(self, names)
        executions_arn = self.format_arn(
            service="states",
            resource="execution",
            resource_name=f"{names.state_machine}:*",
            arn_format=_COLON,
        )
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            queue_name=f"{names.prefix}-dead-letters",
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        suppress(self.dead_letters, {"AwsSolutions-SQS3": "This queue is the dead-letter queue."})

        factory = FunctionFactory(
            self,
            names=names,
            config=config,
            settings_environment=settings_environment,
            dead_letter_queue=self.dead_letters,
        )
        # A watchdog that keeps failing leaves its ticks in the DLQ (the dead-letters alarm): its
        # metrics then stop and the stuck-job alarms, missing data being no breach, stay OK.
        fns = {name: factory.make(name) for name in FUNCTIONS}
        self.functions = fns
        self.factory = factory
        roles = factory.roles
        uploads, results, quarantine, jobs = (
            storage.uploads,
            storage.results,
            storage.quarantine,
            storage.jobs,
        )

        # -- least privilege per function ----------------------------------------------------------
        jobs.grant(roles["start"], "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem")
        roles["start"].add_to_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine_arn])
        )
        self._grant_api(roles["api"], storage, executions_arn)
        jobs.grant(roles["finalize"], "dynamodb:GetItem", "dynamodb:UpdateItem")
        roles["finalize"].add_to_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions_arn])
        )
        # Announcing an ended job: finalize and the watchdog hand it to notify, which reads the job,
        # puts its event on the bus and records its webhook deliveries.
        self.event_bus = events.EventBus(self, "JobEvents", event_bus_name=names.event_bus)
        CfnOutput(self, "EventBusName", value=self.event_bus.event_bus_name)
        self.event_bus.grant_put_events_to(roles["notify"])
        jobs.grant(roles["notify"], "dynamodb:GetItem", "dynamodb:UpdateItem")
        fns["notify"].grant_invoke(roles["finalize"])
        fns["notify"].grant_invoke(roles["watchdog"])
        # The start function deletes what is posted after scan took the upload (a form used twice).
        uploads.grant_delete(roles["start"], "uploads/*")
        results.grant_read(roles["start"], "work/*")
        # Scan, merge and compile run in their functions, or (long uploads) in the stage job
        # (posereel.pipeline.placement), whose role holds what all three hold.
        stage_role = compute.stage_role
        # Scan takes the upload: copies it to work/{job}/source/, deletes it from uploads/, and
        # moves an infected copy to quarantine. Every later stage reads the copy only.
        for role in (roles["scan"], stage_role):
            uploads.grant_read(role, "uploads/*")
            uploads.grant_delete(role, "uploads/*")
            results.grant_read_write(role, "work/*")
            results.grant_delete(role, "work/*")
            quarantine.grant_read_write(role)
            jobs.grant(role, "dynamodb:GetItem")  # a job deleted meanwhile: remove the copy
            results.grant_read(role, f"{CLAMAV_PREFIX}*")
        results.grant_read(roles["validate"], "work/*")
        results.grant_delete(roles["validate"], "work/*")  # a rejected file is deleted
        results.grant_read_write(roles["plan"], "work/*")
        results.grant_delete(roles["plan"], "work/*")
        jobs.grant(roles["plan"], "dynamodb:GetItem", "dynamodb:UpdateItem")
        for role in (roles["merge"], stage_role):
            results.grant_read_write(role, "work/*")
        for role in (roles["compile"], stage_role):
            results.grant_read(role, "work/*")
            results.grant_read_write(role, "results/*")
            jobs.grant(role, "dynamodb:GetItem", "dynamodb:UpdateItem")
        # Each stage records what it used in its job's record (posereel_functions.metered, and
        # the stage job itself).
        for role in [roles[name] for name, spec in FUNCTIONS.items() if spec.usage] + [stage_role]:
            jobs.grant(role, "dynamodb:GetItem", "dynamodb:UpdateItem")
        suppress(
            stage_role,
            {
                "AwsSolutions-IAM5": "Object keys under our own prefixes (uploads/*, work/*, results/*, "
                "clamav/*) and the quarantine bucket's objects: what the scan, merge and compile functions "
                "hold, whose stages this role's jobs run for long uploads."
            },
        )
        # Re-cuts: the api starts them with an event; the recut function reads the job's plan,
        # source copy and results, and writes its reel under results/{job}/reels/.
        fns["recut"].grant_invoke(roles["api"])
        fns["recut"].configure_async_invoke(retry_attempts=RECUT_RETRIES)
        results.grant_read(roles["recut"], "work/*")
        results.grant_read(roles["recut"], "results/*")
        results.grant_put(roles["recut"], "results/*")
        results.grant_delete(roles["recut"], "results/*")  # a reel deleted while it was cut
        jobs.grant(roles["recut"], "dynamodb:GetItem", "dynamodb:UpdateItem")
        compute.workers.grant_watchdog(roles["watchdog"])
        # The watchdog also ends jobs whose upload never came (or starts them when it came but
        # its notification did not): the awaiting index, their records, their uploads/ prefix.
        jobs.grant(roles["watchdog"], "dynamodb:GetItem", "dynamodb:UpdateItem")
        roles["watchdog"].add_to_policy(
            iam.PolicyStatement(
                actions=["dynamodb:Query"], resources=[f"{jobs.table_arn}/index/{AWAITING_UPLOAD_INDEX}"]
            )
        )
        uploads.grant_read(roles["watchdog"], "uploads/*")
        uploads.grant_delete(roles["watchdog"], "uploads/*")
        roles["watchdog"].add_to_policy(
            iam.PolicyStatement(
                actions=["s3:AbortMultipartUpload"], resources=[uploads.arn_for_objects("uploads/*")]
            )
        )
        results.grant_read(roles["watchdog"], "work/*")
        roles["watchdog"].add_to_policy(
            iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine_arn])
        )
        roles["watchdog"].add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],  # PutMetricData has no resource; the namespace condition limits it
                conditions={"StringEquals": {"cloudwatch:namespace": METRICS_NAMESPACE}},
            )
        )

        # -- the workflow: the same file the local stack runs -----------------------------------------
        substitutions = workflow_substitutions(
            function_arns={name: fn.function_arn for name, fn in fns.items()},
            jobs_table=jobs.table_name,
            work_bucket=results.bucket_name,
            job_queue_arns=compute.workers.job_queue_arns,
            job_definition_arns=compute.workers.job_definition_arns,
            stage_job_definition_arn=compute.workers.stage_job_definition_arn,
            chunk_timeout_s=config.chunk_timeout_s,
            max_concurrency=config.max_concurrency,
        )
        definition = (REPO / WORKFLOW_FILE).read_text()
        # Every ${Key} of the definition has a value and every value a ${Key}.
        keys = set(re.findall(r"\$\{(\w+)\}", definition))
        if keys != set(substitutions):
            raise ValueError(f"workflow substitutions differ: {sorted(keys ^ set(substitutions))}")

        role = iam.Role(
            self,
            "WorkflowRole",
            role_name=f"{names.prefix}-workflow",
            assumed_by=iam.ServicePrincipal("states.amazonaws.com"),
            description="PoseReel workflow: invoke its functions, update job records, run Batch workers",
        )
        stage_functions = [fns[n] for n in WORKFLOW_FUNCTIONS.values()]
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[r for f in stage_functions for r in (f.function_arn, f"{f.function_arn}:*")],
            )
        )
        jobs.grant(role, "dynamodb:UpdateItem")
        compute.workers.grant_workflow(role)
        self.workflow_logs = log_group(
            self, "WorkflowLogs", config, name=f"/aws/vendedlogs/states/{names.state_machine}"
        )
        self.state_machine = sfn.StateMachine(
            self,
            "Workflow",
            state_machine_name=names.state_machine,
            definition_body=sfn.DefinitionBody.from_string(definition),
            definition_substitutions=substitutions,
            role=role,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.workflow_logs, level=sfn.LogLevel.ALL, include_execution_data=False
            ),
        )

        # -- events: an upload starts a job; a failed/timed-out/aborted execution is finalized -------
        self.uploads_rule = events.Rule(
            self,
            "UploadCreated",
            rule_name=f"{names.prefix}-upload-created",
            description="An object landed under uploads/ in the uploads bucket: start its job",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [uploads.bucket_name]},
                    "object": {"key": [{"prefix": "uploads/"}]},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    fns["start"],
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )
        self.execution_rule = events.Rule(
            self,
            "ExecutionEnded",
            rule_name=f"{names.prefix}-execution-ended",
            description="A workflow execution ended: finalize its job (and have it announced)",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"status": ENDED_STATUSES, "stateMachineArn": [self.state_machine_arn]},
            ),
            targets=[
                targets.LambdaFunction(
                    fns["finalize"],
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )

        # -- the watchdog: how long chunk jobs wait for capacity, as metrics (monitoring alarms) -----
        self.watchdog_schedule = events.Rule(
            self,
            "WatchdogSchedule",
            rule_name=f"{names.prefix}-watchdog",
            description="Publish how long chunk jobs have waited for capacity (the stuck-job alarms)",
            schedule=events.Schedule.rate(WATCHDOG_EVERY),
            targets=[
                targets.LambdaFunction(
                    fns["watchdog"],
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=2,
                    max_event_age=WATCHDOG_EVERY,  # the next tick measures afresh
                )
            ],
        )

        # -- ClamAV signatures refreshed into s3://results/clamav/ on a schedule (Fargate) ----------
        refresh_role = iam.Role(
            self,
            "ClamavRefreshRole",
            role_name=f"{names.prefix}-clamav-refresh",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="Writes the ClamAV signature databases under clamav/ in the results bucket",
        )
        results.grant_read_write(refresh_role, f"{CLAMAV_PREFIX}*")
        results.grant_delete(refresh_role, f"{CLAMAV_PREFIX}*")
        refresh_image = DockerImageAsset(
            self,
            "ClamavRefreshImage",
            directory=str(REPO),
            file="containers/lambda/Dockerfile",
            target="clamav-refresh",
            build_args=IMAGE_BUILD_ARGS,
            exclude=DOCKER_CONTEXT_EXCLUDE,
            platform=Platform.LINUX_AMD64,
        )
        refresh = ContainerJob(
            name=f"{names.prefix}-clamav-refresh",
            image=ecs.ContainerImage.from_docker_image_asset(refresh_image),
            role=refresh_role,
            vcpus=1,
            memory_mib=2048,
            environment={"CLAMAV_DB_URI": f"s3://{results.bucket_name}/{CLAMAV_PREFIX}"},
            log_group=log_group(self, "ClamavRefreshLogs", config),
            stream_prefix="clamav",
            timeout=Duration.minutes(30),
            retry_attempts=3,
        )
        self.clamav_schedule = events.Rule(
            self,
            "ClamavSchedule",
            rule_name=f"{names.prefix}-clamav-refresh",
            description="Refresh the ClamAV signature databases the scan function reads",
            schedule=events.Schedule.rate(Duration.hours(config.clamav_refresh_hours)),
            targets=[
                compute.workers.scheduled_target(
                    self, "ClamavRefresh", refresh, dead_letter_queue=self.dead_letters
                )
            ],
        )

        suppress(
            self,
            {
                "AwsSolutions-IAM5": "Wildcards are object keys under our own prefixes (uploads/*, work/*, "
                "results/*, clamav/*), function versions (arn:*), executions of our state machine, our job "
                "definitions' revisions, and the '*' resources AWS requires (X-Ray, CloudWatch Logs delivery "
                "for Step Functions, batch:DescribeJobs, ECR GetAuthorizationToken; for the watchdog "
                "batch:ListJobs, which has no resource-level permissions, and cloudwatch:PutMetricData, "
                "limited to the PoseReel namespace by the cloudwatch:namespace condition).",
                "AwsSolutions-IAM4": "The Fargate execution role of the ClamAV refresh uses AWS's "
                "AmazonECSTaskExecutionRolePolicy.",
                "AwsSolutions-L1": f"Python {LAMBDA_PYTHON} (posereel.resources.LAMBDA_PYTHON) is the "
                "runtime the layer's wheels and the images are resolved for; a newer one is a change of "
                "that one value, checked by the runtime-wheels test.",
            },
        )

    def _grant_api(self, role: iam.Role, storage: StorageStack, executions_arn: str) -> None:
        """The api function: job records (its owner's list through the by_owner index), uploads
        (presigned POST, multipart parts, completing or aborting them), result downloads, and
        DELETE /jobs/{id}: stop the execution, remove the upload, work/ and results/, the record.
        Never the quarantine bucket: what it holds is kept as evidence."""
        jobs, uploads, results = storage.jobs, storage.uploads, storage.results
        statements = [
            iam.PolicyStatement(
                sid="JobRecords",
                actions=[
                    "dynamodb:GetItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                ],
                resources=[jobs.table_arn],
            ),
            iam.PolicyStatement(
                sid="JobsOfAnOwner",
                actions=["dynamodb:Query"],
                resources=[f"{jobs.table_arn}/index/{BY_OWNER_INDEX}"],
            ),
            # s3:PutObject covers the presigned POST and CreateMultipartUpload, UploadPart and
            # CompleteMultipartUpload; listing the parts is a permission of its own.
            iam.PolicyStatement(
                sid="Uploads",
                actions=[
                    "s3:PutObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                    "s3:DeleteObject",
                ],
                resources=[uploads.arn_for_objects("uploads/*")],
            ),
            iam.PolicyStatement(
                sid="ResultDownloads",
                actions=["s3:GetObject"],
                resources=[results.arn_for_objects("results/*")],
            ),
            iam.PolicyStatement(
                sid="DeleteResultsAndWork",
                actions=["s3:DeleteObject"],
                resources=[results.arn_for_objects("results/*"), results.arn_for_objects("work/*")],
            ),
            iam.PolicyStatement(
                sid="ListUploads",
                actions=["s3:ListBucket"],
                resources=[uploads.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["uploads/*"]}},
            ),
            iam.PolicyStatement(
                sid="ListResultsAndWork",
                actions=["s3:ListBucket"],
                resources=[results.bucket_arn],
                conditions={"StringLike": {"s3:prefix": ["results/*", "work/*"]}},
            ),
            iam.PolicyStatement(
                sid="JobExecutions",
                actions=["states:DescribeExecution", "states:StopExecution"],
                resources=[executions_arn],
            ),
        ]
        for statement in statements:
            role.add_to_policy(statement)
