"""S3 -> Lambda notifications delivered asynchronously, as S3 delivers them: moto calls the
function inside the request that wrote the object, so a burst of uploads would each wait for the
start function (and a client's upload could time out on a slow stage). Here the request returns at
once and a few delivery threads invoke the functions from a queue, in order of arrival."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from posereel_local.hooks.common import logger
from posereel_local.hooks.moto_check import Signature

if TYPE_CHECKING:
    from posereel_local.hooks import Patcher

SIGNATURES: Final = (
    Signature(
        "moto.s3.notifications", "_invoke_awslambda", ("account_id", "event_body", "fn_arn", "region_name")
    ),
)
ATTRIBUTES: Final = ()
DELIVERY_THREADS = 4


def install(patcher: Patcher) -> None:
    from moto.s3 import notifications

    deliver: Callable[..., None] = notifications.__dict__["_invoke_awslambda"]
    pending: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()

    def drain() -> None:
        while True:
            args = pending.get()
            try:
                deliver(*args)  # moto's own: it never raises (S3 ignores a failing target)
            except Exception:
                logger.exception("local S3: a notification could not be delivered")

    for number in range(DELIVERY_THREADS):
        threading.Thread(target=drain, name=f"s3-notifications-{number}", daemon=True).start()

    def invoke_later(account_id: str, event_body: Any, fn_arn: str, region_name: str) -> None:
        pending.put((account_id, event_body, fn_arn, region_name))

    patcher.patch(notifications, "_invoke_awslambda", invoke_later)
