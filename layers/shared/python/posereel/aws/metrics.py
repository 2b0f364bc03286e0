"""Custom CloudWatch metrics by PutMetricData (the watchdog's; the functions' own metrics go out
as EMF log lines through Powertools)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3

from posereel.aws._errors import transient_errors
from posereel.pipeline.ports import MetricDatum

# PutMetricData takes at most 1,000 data points a call.
_PUT_MAX = 1000


class CloudWatchMetrics:
    """Data points into one namespace; implements posereel.pipeline.ports.MetricsPort."""

    def __init__(self, namespace: str, *, client: Any = None) -> None:
        self.namespace = namespace
        self._client = client if client is not None else boto3.client("cloudwatch")

    def publish(self, data: Sequence[MetricDatum]) -> None:
        items = [
            {
                "MetricName": datum.name,
                "Value": datum.value,
                "Unit": datum.unit,
                "Timestamp": datum.timestamp,
                "Dimensions": [{"Name": name, "Value": value} for name, value in datum.dimensions.items()],
            }
            for datum in data
        ]
        for start in range(0, len(items), _PUT_MAX):
            with transient_errors(f"publishing metrics to {self.namespace}"):
                self._client.put_metric_data(
                    Namespace=self.namespace, MetricData=items[start : start + _PUT_MAX]
                )
