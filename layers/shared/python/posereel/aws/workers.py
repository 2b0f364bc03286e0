"""The chunk workers' queues, for the watchdog: which jobs have not started, and since when.

``BatchQueues`` reads AWS Batch job queues; it implements posereel.pipeline.ports.WorkerQueuesPort."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3

from posereel.aws._errors import transient_errors
from posereel.pipeline.ports import WorkerJob


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
