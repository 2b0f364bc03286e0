"""The chunk workers' queues, for the watchdog: which jobs have not started, and since when.

``BatchQueues`` reads AWS Batch job queues; ``EcsTasks`` reads an ECS cluster, where a "queue" is a
worker task definition family. Both implement posereel.pipeline.ports.WorkerQueuesPort."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3

from posereel.aws._errors import transient_errors
from posereel.pipeline.ports import WorkerJob

# DescribeTasks takes at most 100 tasks a call.
_DESCRIBE_TASKS_MAX = 100


class BatchQueues:
    """Jobs in AWS Batch job queues (a queue by name or ARN)."""

    def __init__(self, *, client: Any = None) -> None:
        self._client = client if client is not None else boto3.client("batch")

    def unstarted(self, queue: str) -> list[WorkerJob]:
        """The queue's RUNNABLE jobs: ListJobs filters by one status, and RUNNABLE is the one that
        waits for capacity (SUBMITTED and PENDING wait for the scheduler or dependencies)."""
        jobs: list[WorkerJob] = []
        with transient_errors(f"listing the RUNNABLE jobs of {queue}"):
            pages = self._client.get_paginator("list_jobs").paginate(jobQueue=queue, jobStatus="RUNNABLE")
            for page in pages:
                for summary in page.get("jobSummaryList", []):
                    created_ms = summary.get("createdAt")
                    jobs.append(
                        WorkerJob(
                            job_id=str(summary["jobId"]),
                            status=str(summary.get("status", "RUNNABLE")),
                            created_at=(
                                datetime.fromtimestamp(created_ms / 1000, UTC)
                                if created_ms is not None
                                else None
                            ),
                        )
                    )
        return jobs


class EcsTasks:
    """Tasks in one ECS cluster (by name or ARN), one "queue" per task definition family."""

    def __init__(self, cluster: str, *, client: Any = None) -> None:
        self.cluster = cluster
        self._client = client if client is not None else boto3.client("ecs")

    def unstarted(self, queue: str) -> list[WorkerJob]:
        """The family's tasks that are to run (desired status RUNNING) but are not yet running, with
        their lastStatus (PROVISIONING, PENDING, ACTIVATING)."""
        arns: list[str] = []
        jobs: list[WorkerJob] = []
        with transient_errors(f"listing the tasks of {queue} in {self.cluster}"):
            pages = self._client.get_paginator("list_tasks").paginate(
                cluster=self.cluster, family=queue, desiredStatus="RUNNING"
            )
            for page in pages:
                arns.extend(page.get("taskArns", []))
            for start in range(0, len(arns), _DESCRIBE_TASKS_MAX):
                response = self._client.describe_tasks(
                    cluster=self.cluster, tasks=arns[start : start + _DESCRIBE_TASKS_MAX]
                )
                for task in response.get("tasks", []):
                    status, created = str(task.get("lastStatus", "")), task.get("createdAt")
                    if status == "RUNNING":
                        continue
                    jobs.append(
                        WorkerJob(
                            job_id=str(task["taskArn"]),
                            status=status,
                            created_at=_utc(created) if isinstance(created, datetime) else None,
                        )
                    )
        return jobs


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
