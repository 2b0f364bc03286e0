"""Alarms: failed/timed-out executions, dead letters, chunk jobs stuck waiting for capacity."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.stacks.pipeline import PipelineStack
from posereel.resources import ResourceNames


class MonitoringStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: ResourceNames,
        config: EnvironmentConfig,
        pipeline: PipelineStack,
        **kwargs,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.topic = sns.Topic(self, "Alarms", topic_name=f"{names.prefix}-alarms", enforce_ssl=True)
        if config.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(config.alarm_email))
        notify = actions.SnsAction(self.topic)
        machine = pipeline.state_machine

        def alarm(construct_id: str, metric: cw.IMetric, description: str) -> cw.Alarm:
            created = cw.Alarm(
                self,
                construct_id,
                alarm_name=f"{names.prefix}-{construct_id}",
                alarm_description=description,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cw.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(notify)
            return created

        five_min = Duration.minutes(5)
        self.failed = alarm(
            "executions-failed",
            cw.MathExpression(
                expression="failed + timedout + aborted",
                using_metrics={
                    "failed": machine.metric_failed(period=five_min, statistic="Sum"),
                    "timedout": machine.metric_timed_out(period=five_min, statistic="Sum"),
                    "aborted": machine.metric_aborted(period=five_min, statistic="Sum"),
                },
                period=five_min,
            ),
            "A PoseReel workflow execution failed, timed out or was aborted",
        )
        self.dead_letters = alarm(
            "dead-letters",
            pipeline.dead_letters.metric_approximate_number_of_messages_visible(
                period=five_min, statistic="Maximum"
            ),
            "Events that could not be delivered to start/finalize (or the ClamAV refresh) are waiting in "
            "the DLQ",
        )
        # Neither Batch nor ECS publishes a "waiting for capacity" metric. A chunk task waits for its
        # job chunk_timeout_s + 300 s; a chunk task that times out means its Batch job sat RUNNABLE
        # (or its ECS task PROVISIONING) that long: no capacity, no GPU quota.
        backend = config.worker_backend
        waiting = {
            "batch": ("BatchJobsStuck", "batch-jobs-stuck-runnable", "Batch chunk job", "RUNNABLE"),
            "ecs": ("EcsTasksStuck", "ecs-tasks-stuck-provisioning", "ECS chunk task", "PROVISIONING"),
        }
        metric_name, alarm_name, what, state = waiting[backend]
        stuck = logs.MetricFilter(
            self,
            "BatchTaskTimedOut" if backend == "batch" else "EcsTaskTimedOut",
            log_group=pipeline.workflow_logs,
            metric_namespace="PoseReel",
            metric_name=f"{metric_name}-{names.env}",
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.type", "=", "TaskTimedOut"),
                logs.FilterPattern.string_value("$.details.resourceType", "=", backend),
            ),
            metric_value="1",
        )
        self.stuck = alarm(
            alarm_name,
            stuck.metric(period=Duration.minutes(15), statistic="Sum"),
            f"A {what} did not finish within its timeout + 300 s: it waited {state} for capacity "
            "(GPU quota, spot capacity or max vCPUs)",
        )
