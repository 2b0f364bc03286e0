"""Buckets (uploads, results, quarantine, access logs) and the jobs table."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.common import removal_policy, suppress
from infra.config import EnvironmentConfig
from posereel.resources import JOBS_TABLE, ResourceNames

# The only role that may write to the quarantine bucket: the scan function's (see PipelineStack).
SCAN_ROLE_SUFFIX = "scan-fn"


def function_role_name(names: ResourceNames, function: str) -> str:
    """Function roles have fixed names, so a bucket policy can name one without a stack cycle."""
    return f"{names.prefix}-{function}-fn"


def stage_role_name(names: ResourceNames) -> str:
    """The stage job's role (posereel.resources.STAGE_JOB), named for the same reason."""
    return f"{names.prefix}-stage"


class StorageStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        config: EnvironmentConfig,
        allowed_origins: list[str],
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = removal_policy(config)
        destroy = config.removal_policy == "destroy"
        common = dict(
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=removal,
            auto_delete_objects=destroy,
        )

        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            bucket_name=f"{names.prefix}-access-logs-{self.account}",
            lifecycle_rules=[
                s3.LifecycleRule(id="expire-logs", expiration=Duration.days(config.results_expiry_days))
            ],
            **common,
        )
        suppress(
            self.access_logs,
            {"AwsSolutions-S1": "This is the access-log bucket; logging it into itself would loop."},
        )

        def logged(prefix: str) -> dict:
            return dict(server_access_logs_bucket=self.access_logs, server_access_logs_prefix=f"{prefix}/")

        abort = Duration.days(config.abort_multipart_days)
        self.uploads = s3.Bucket(
            self,
            "Uploads",
            bucket_name=names.bucket("uploads", account=self.account),
            event_bridge_enabled=True,
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.POST, s3.HttpMethods.PUT],
                    allowed_origins=allowed_origins,  # browsers upload with presigned POST/PUT
                    allowed_headers=["*"],
                    exposed_headers=["ETag"],
                    max_age=3000,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="uploads",
                    abort_incomplete_multipart_upload_after=abort,
                    expiration=Duration.days(config.upload_expiry_days),
                )
            ],
            **logged("uploads"),
            **common,
        )
        self.results = s3.Bucket(
            self,
            "Results",
            bucket_name=names.bucket("results", account=self.account),
            cors=[
                s3.CorsRule(
                    allowed_methods=[s3.HttpMethods.GET, s3.HttpMethods.HEAD],
                    allowed_origins=allowed_origins,  # the page reads tracks.json and reel.json
                    max_age=3000,
                )
            ],
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-multipart", abort_incomplete_multipart_upload_after=abort),
                s3.LifecycleRule(
                    id="work", prefix="work/", expiration=Duration.days(config.work_expiry_days)
                ),
                s3.LifecycleRule(
                    id="results", prefix="results/", expiration=Duration.days(config.results_expiry_days)
                ),
            ],
            **logged("results"),
            **common,
        )
        self.quarantine = s3.Bucket(
            self,
            "Quarantine",
            bucket_name=names.bucket("quarantine", account=self.account),
            lifecycle_rules=[
                s3.LifecycleRule(id="abort-multipart", abort_incomplete_multipart_upload_after=abort)
            ],
            **logged("quarantine"),
            **common,
        )
        # The scan runs in its function, or for a large upload in the stage job.
        scanner_arns = [
            self.format_arn(service="iam", region="", resource="role", resource_name=name)
            for name in (function_role_name(names, "scan"), stage_role_name(names))
        ]
        self.quarantine.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheScannerWrites",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["s3:PutObject", "s3:PutObjectTagging", "s3:PutObjectAcl", "s3:RestoreObject"],
                resources=[self.quarantine.arn_for_objects("*")],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": scanner_arns}},
            )
        )

        self.jobs = dynamodb.TableV2(
            self,
            "Jobs",
            table_name=names.jobs_table,
            partition_key=_string(JOBS_TABLE.partition_key),
            billing=dynamodb.Billing.on_demand(),
            time_to_live_attribute=JOBS_TABLE.ttl_attribute,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=config.point_in_time_recovery
            ),
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=index.name,
                    partition_key=_string(index.partition_key),
                    sort_key=_string(index.sort_key),
                )
                for index in JOBS_TABLE.indexes
            ],
            removal_policy=removal,
        )
        if not config.point_in_time_recovery:
            suppress(
                self.jobs,
                {
                    "AwsSolutions-DDB3": "Point-in-time recovery is off in this environment by config "
                    "(records are re-creatable, TTL-bound)."
                },
            )
        suppress_bucket_notifications(self)


def _string(name: str) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=name, type=dynamodb.AttributeType.STRING)


def suppress_bucket_notifications(stack: Stack) -> None:
    """The CDK's own helper Lambdas (bucket notifications, auto-delete) come with AWS managed policies."""
    from cdk_nag import NagSuppressions

    reasons = {
        "AwsSolutions-IAM4": "CDK-provided custom resource handler (S3 notifications / auto-delete objects) "
        "uses AWSLambdaBasicExecutionRole.",
        "AwsSolutions-IAM5": "CDK-provided bucket notifications handler needs s3:PutBucketNotification on "
        "the bucket it configures; CDK scopes it to '*'.",
        "AwsSolutions-L1": "CDK-provided custom resource handler: its runtime is chosen by aws-cdk-lib.",
    }
    from cdk_nag import NagPackSuppression

    NagSuppressions.add_stack_suppressions(
        stack, [NagPackSuppression(id=rule, reason=reason) for rule, reason in reasons.items()]
    )
