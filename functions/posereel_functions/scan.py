"""scan: ClamAV on the upload; infected ones go to quarantine. {job_id, source} -> {"clean", "engine"}"""

from __future__ import annotations

from typing import Any

from posereel.observability import lambda_boundary
from posereel.pipeline.events import ScanEvent, ScanResult
from posereel.pipeline.scan import ClamAV, resolve_clamav_db, scan_upload
from posereel_functions import after_container, job_store, media_store, metered, per_container, settings


@per_container
def scanner() -> ClamAV:
    """Per container: an s3:// database is downloaded to /tmp on the first scan only."""
    return ClamAV(resolve_clamav_db(settings().clamav_db, media=media_store()))


@lambda_boundary
@metered("scan")
@after_container("scan", ScanResult)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result = scan_upload(
        ScanEvent.model_validate(event),
        settings=settings(),
        media=media_store(),
        jobs=job_store(),
        scanner=scanner(),
    )
    return result.model_dump(mode="json")
