"""Take an upload out of the clients' reach and virus-scan it with ClamAV; an infected one is
moved to the quarantine bucket.

Every byte is scanned, whatever the size: clamscan takes at most 2 GiB at once, so an upload is
streamed from S3 in pieces (``pieces``: 2000 MiB, overlapping by 1 MiB) into ``clamscan -``, one
piece after the other (or several side by side: ``scan_processes``), and the first infected
piece decides. A body signature (a byte pattern,
far shorter than the overlap) that straddles a border lies whole in the piece after it; a
whole-file hash signature matches an upload of one piece only. Nothing is downloaded: the
scan's disk holds one piece (clamscan's copy of its input).

``clamscan`` exits 0 (clean), 1 (a signature matched: its name is on stdout) or 2 (an error: no
or bad database, unreadable file). An error is a ToolError: retrying the same scan gives the
same answer, so the job fails rather than loops. The signature database is
``settings.clamav_db``: a directory, or s3://bucket/prefix/ downloaded into /tmp once per
container (Lambda keeps /tmp between invocations of a warm container).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

from posereel.errors import MalwareError, ObjectNotFoundError, ToolError, VideoNotFoundError
from posereel.pipeline.deletion import job_wanted, raise_if_deleted
from posereel.pipeline.events import ScanEvent, ScanResult, SourceRef
from posereel.pipeline.files import source_key
from posereel.pipeline.ports import JobStorePort, MediaStorePort
from posereel.pipeline.validate import check_size, discard_when_rejected
from posereel.settings import PipelineSettings

log = logging.getLogger(__name__)

JOB_TAG = "posereel:job_id"
THREAT_TAG = "posereel:threat"
# clamscan skips (and calls clean) files above its size limits (100 MB / 400 MB by default):
# raise them to the most it takes (it scans nothing of 2 GiB or more), above every piece's size.
_CLAMSCAN_MAX_SIZE = "2047M"
PIECE_BYTES = 2000 * 1024**2
PIECE_OVERLAP_BYTES = 1024**2
_OUTPUT_TAIL_CHARS = 1500
_FOUND = re.compile(r":\s*(?P<signature>.+?)\s+FOUND\s*$", re.MULTILINE)
# S3 tag values: letters, digits, spaces and + - = . _ : / @, at most 256 characters.
_TAG_UNSAFE = re.compile(r"[^\w +\-=.:/@]")


@dataclass(frozen=True, slots=True)
class ScanVerdict:
    clean: bool
    signature: str | None = None


class Scanner(Protocol):
    engine: str

    def scan(self, data: Iterable[bytes], *, name: str) -> ScanVerdict:
        """Scan the bytes ``data`` yields (at most PIECE_BYTES); ``name`` is for messages."""
        ...


def pieces(
    size_bytes: int, *, piece_bytes: int = PIECE_BYTES, overlap_bytes: int = PIECE_OVERLAP_BYTES
) -> list[tuple[int, int]]:
    """(start, length) of the pieces that cover ``size_bytes`` bytes: each at most
    ``piece_bytes`` long, each after the first starting ``overlap_bytes`` before the end of the
    one before it."""
    if not 0 <= overlap_bytes < piece_bytes:
        raise ValueError("the overlap must be shorter than a piece")
    spans, start = [], 0
    while True:
        length = min(piece_bytes, size_bytes - start)
        spans.append((start, length))
        if start + length >= size_bytes:
            return spans
        start += piece_bytes - overlap_bytes


def scan_processes(processes: int, *, scratch: Path | None = None) -> int:
    """How many pieces may be scanned at once here: at most ``processes``, and as many as the
    scratch disk (where clamscan copies its input) holds pieces of, with one piece's room to
    spare. A Lambda's /tmp holds one; a stage job's disk, one per core."""
    free = shutil.disk_usage(scratch or tempfile.gettempdir()).free
    return max(1, min(processes, free // PIECE_BYTES - 1))


def scan_object(
    media: MediaStorePort,
    bucket: str,
    key: str,
    *,
    size_bytes: int,
    name: str,
    scanner: Scanner,
    processes: int = 1,
    piece_bytes: int = PIECE_BYTES,
) -> ScanVerdict:
    """Scan the object piece by piece (``pieces``), streamed from the store, ``processes`` pieces
    at once; the first infected piece (in the file's order) decides, and no piece after it is
    started."""
    spans = pieces(size_bytes, piece_bytes=piece_bytes)

    def scan(span: tuple[int, int]) -> ScanVerdict:
        start, length = span
        return scanner.scan(media.read_range(bucket, key, start=start, length=length), name=name)

    if processes <= 1 or len(spans) == 1:
        for span in spans:
            verdict = scan(span)
            if not verdict.clean:
                return verdict
        return ScanVerdict(clean=True)
    with ThreadPoolExecutor(max_workers=processes, thread_name_prefix="scan") as pool:
        futures = [pool.submit(scan, span) for span in spans]
        try:
            for future in futures:
                verdict = future.result()
                if not verdict.clean:
                    return verdict
        finally:
            for future in futures:
                future.cancel()
    return ScanVerdict(clean=True)


class ClamAV:
    """``clamscan`` with a given signature database (a directory or one database file)."""

    def __init__(self, database: Path, *, clamscan: str = "clamscan", timeout_s: float = 600.0) -> None:
        database = Path(database)
        if not database.exists() or (database.is_dir() and not any(database.iterdir())):
            raise ToolError(
                f"no ClamAV signature database at {database}: set POSEREEL_CLAMAV_DB to a directory "
                "or s3:// prefix holding one (freshclam fills it)"
            )
        self.database = database
        self.clamscan = clamscan
        self.timeout_s = timeout_s
        self.engine = self._version()

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [self.clamscan, *args],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=self.timeout_s,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise ToolError(f"{self.clamscan!r} not found: install ClamAV (Debian: clamav)") from exc
        except subprocess.TimeoutExpired as exc:
            raise ToolError(f"clamscan did not finish within {self.timeout_s:.0f} s") from exc

    def _version(self) -> str:
        proc = self._run(["--version"])
        if proc.returncode != 0:
            raise ToolError(f"clamscan --version failed: {_tail(proc.stderr or proc.stdout)}")
        # "ClamAV 1.4.6/27500/Mon Jan  1 ..." (the database part only with the official one)
        return proc.stdout.strip().split("/", 1)[0] or "ClamAV"

    def scan(self, data: Iterable[bytes], *, name: str) -> ScanVerdict:
        """``clamscan -`` fed ``data`` through its standard input (it copies it to a temporary
        file, then scans it: the disk holds one piece)."""
        cmd = [
            self.clamscan, "--no-summary", f"--max-filesize={_CLAMSCAN_MAX_SIZE}",
            f"--max-scansize={_CLAMSCAN_MAX_SIZE}", "-d", str(self.database), "-",
        ]  # fmt: skip
        with tempfile.TemporaryFile() as errors:
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
            except FileNotFoundError as exc:
                raise ToolError(f"{self.clamscan!r} not found: install ClamAV (Debian: clamav)") from exc
            assert proc.stdin is not None and proc.stdout is not None
            timed_out = threading.Event()

            def stop() -> None:
                timed_out.set()
                proc.kill()

            timer = threading.Timer(self.timeout_s, stop)
            timer.start()
            try:
                try:
                    for piece in data:
                        proc.stdin.write(piece)
                    proc.stdin.close()
                except BrokenPipeError:
                    pass  # clamscan stopped reading: its exit status says why
                output = proc.stdout.read().decode(errors="replace")
                returncode = proc.wait()
            finally:
                timer.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            errors.seek(0)
            message = errors.read().decode(errors="replace")
        if timed_out.is_set():
            raise ToolError(f"clamscan did not finish {name} within {self.timeout_s:.0f} s")
        if returncode == 0:
            return ScanVerdict(clean=True)
        if returncode == 1:
            found = _FOUND.search(output)
            return ScanVerdict(clean=False, signature=found["signature"] if found else "unknown signature")
        detail = _tail(message or output) or "no message"
        raise ToolError(f"clamscan failed (exit status {returncode}) on {name}: {detail}")


_db_lock = threading.Lock()


def resolve_clamav_db(spec: str, *, media: MediaStorePort, cache_root: Path | None = None) -> Path:
    """The local directory of the signature database ``spec`` (a path, or s3://bucket/prefix/).

    An S3 database is downloaded once into ``cache_root`` (the temp directory by default) and
    reused while the files are there; a partial download is never used."""
    if not spec.startswith("s3://"):
        return Path(spec)
    bucket, _, prefix = spec.removeprefix("s3://").partition("/")
    if not bucket:
        raise ToolError(f"bad ClamAV database location {spec!r}: expected s3://bucket/prefix/")
    root = Path(cache_root or tempfile.gettempdir()) / "posereel-clamav"
    target = root / hashlib.sha256(spec.encode()).hexdigest()[:16]
    with _db_lock:
        if target.is_dir():
            return target
        keys = [k for k in media.list_keys(bucket, prefix) if not k.endswith("/")]
        if not keys:
            raise ToolError(f"no ClamAV signature database under {spec}")
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=_mkdir(root)))
        try:
            for key in keys:
                media.download(bucket, key, partial / PurePosixPath(key).name)
            partial.rename(target)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        log.info("downloaded %d ClamAV database files from %s", len(keys), spec)
        return target


def quarantine_key(job_id: str, name: str) -> str:
    return f"quarantine/{job_id}/{name}"


def scan_upload(
    event: ScanEvent,
    *,
    settings: PipelineSettings,
    media: MediaStorePort,
    jobs: JobStorePort,
    scanner: Scanner,
) -> ScanResult:
    """Take the upload out of the clients' reach, then scan it: the first stage to read a job's
    bytes, so nothing parses a file before it is scanned.

    The upload is copied (conditional on the ETag its size was checked with) to
    work/{job_id}/source/, which no client can write, and deleted from uploads/: a form posted
    again later changes nothing that is scanned or analysed. The copy is what is scanned and what
    every later stage reads (the result's ``source``). An empty or oversized upload is deleted
    and rejected; an infected one is moved to quarantine (tagged with the job id and the threat)
    and rejected with MalwareError naming the signature. A re-run finds the copy (or the
    quarantined file) and gives the same answer."""
    name = PurePosixPath(event.source.key).name or "video"
    pinned = SourceRef(bucket=settings.results_bucket, key=source_key(event.job_id, name))
    dest_key = quarantine_key(event.job_id, name)
    stored = media.head(pinned.bucket, pinned.key)
    if stored is None:  # the first run (a re-run finds the copy, or the quarantined file)
        _take_upload(event.source, pinned, name=name, settings=settings, media=media)
        stored = media.head(pinned.bucket, pinned.key)
    if stored is None:
        if media.head(settings.quarantine_bucket, dest_key) is not None:
            threat = media.get_tags(settings.quarantine_bucket, dest_key).get(THREAT_TAG, "unknown")
            raise MalwareError(_malware_message(name, threat))
        raise VideoNotFoundError(f"the upload {name} is gone")
    # The copy is the upload whose size _take_upload checked (the copy is conditional on its ETag).
    with discard_when_rejected(media, pinned):
        try:
            verdict = scan_object(
                media, pinned.bucket, pinned.key, size_bytes=stored.size_bytes, name=name, scanner=scanner,
                processes=scan_processes(settings.runtime.tool_processes()),
            )  # fmt: skip
        except ObjectNotFoundError:
            raise VideoNotFoundError(f"the upload {name} is gone") from None
    if verdict.clean:
        wanted = job_wanted(event.job_id, jobs=jobs)
        raise_if_deleted(
            event.job_id, wanted=wanted, media=media, bucket=pinned.bucket, keys=[pinned.key], stage="scan"
        )
        return ScanResult(clean=True, engine=scanner.engine, source=pinned)
    threat = verdict.signature or "unknown signature"
    media.move(
        pinned.bucket,
        pinned.key,
        dest_bucket=settings.quarantine_bucket,
        dest_key=dest_key,
        tags={JOB_TAG: event.job_id, THREAT_TAG: tag_value(threat)},
    )
    log.warning("job %s: quarantined %s (%s) as s3://%s/%s", event.job_id, name, threat,
                settings.quarantine_bucket, dest_key)  # fmt: skip
    raise MalwareError(_malware_message(name, threat))


def _take_upload(
    upload: SourceRef, pinned: SourceRef, *, name: str, settings: PipelineSettings, media: MediaStorePort
) -> None:
    """Copy the upload to ``pinned`` and delete it; an empty or oversized one is only deleted.
    A missing upload is left for the caller to explain (gone, or quarantined by an earlier run)."""
    head = media.head(upload.bucket, upload.key)
    if head is None:
        return
    with discard_when_rejected(media, upload):
        check_size(name, head.size_bytes, settings)
    media.copy(upload.bucket, upload.key, dest_bucket=pinned.bucket, dest_key=pinned.key, if_match=head.etag)
    media.delete(upload.bucket, upload.key)


def tag_value(text: str) -> str:
    return _TAG_UNSAFE.sub("_", text)[:256]


def _malware_message(name: str, threat: str) -> str:
    return f"{name} is infected ({threat}); it was moved to quarantine, nothing of it was analysed"


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _tail(text: str | None) -> str:
    text = (text or "").strip()
    return text[-_OUTPUT_TAIL_CHARS:]
