"""Alarms: failed/timed-out executions, dead letters, chunk jobs stuck waiting for capacity."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cw
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.config import EnvironmentConfig
from infra.stacks.pipeline import PipelineStack
from posereel.resources import (
    ENVIRONMENT_DIMENSION,
    METRICS_NAMESPACE,
    OLDEST_WAIT_METRIC,
    QUEUE_DIMENSION,
    ResourceNames,
)


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

        def alarm(
            construct_id: str,
            metric: cw.IMetric,
            description: str,
            *,
            threshold: float = 1,
            comparison: cw.ComparisonOperator = cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        ) -> cw.Alarm:
            created = cw.Alarm(
                self,
                construct_id,
                alarm_name=f"{names.prefix}-{construct_id}",
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=comparison,
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
            "Events that could not be delivered to start/finalize (or the ClamAV refresh), or watchdog "
            "runs that kept failing, are waiting in the DLQ",
        )
        # Batch publishes no "waiting for capacity" metric: the watchdog function publishes the age
        # of the oldest waiting job per queue every 5 minutes (0 when none waits).
        causes = {
            "gpu": "GPU instance quota, spot capacity or the GPU capacity's maximum",
            "cpu": "Fargate quota or Fargate Spot capacity, or the CPU queue's max vCPUs",
        }
        minutes = config.stuck_after_s / 60
        self.stuck = {
            queue: alarm(
                f"{queue}-jobs-stuck-runnable",
                cw.Metric(
                    namespace=METRICS_NAMESPACE,
                    metric_name=OLDEST_WAIT_METRIC,
                    dimensions_map={ENVIRONMENT_DIMENSION: names.env, QUEUE_DIMENSION: queue},
                    period=five_min,
                    statistic="Maximum",
                ),
                f"A Batch chunk job on the {queue.upper()} queue has waited RUNNABLE for capacity for more "
                f"than {minutes:g} minutes ({causes[queue]})",
                threshold=config.stuck_after_s,
                comparison=cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
            )
            for queue in ("gpu", "cpu")
        }
