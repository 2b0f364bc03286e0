"""AWS adapters: the only place PoseReel calls boto3.

Each adapter implements an interface of ``posereel.pipeline.ports`` and takes its boto3 client as
an optional argument; by default it makes one from the SDK's own settings (region, credentials,
``AWS_ENDPOINT_URL``), so the same code talks to AWS, the embedded local AWS or moto.
"""

from posereel.aws.events import EventBus
from posereel.aws.functions import Functions
from posereel.aws.jobstore import JobStore
from posereel.aws.mediastore import MediaStore
from posereel.aws.metrics import CloudWatchMetrics
from posereel.aws.workers import BatchQueues
from posereel.aws.workflow import Workflow

__all__ = ["BatchQueues", "CloudWatchMetrics", "EventBus", "Functions", "JobStore", "MediaStore", "Workflow"]
