"""An embedded local AWS: moto in server mode on 127.0.0.1, in this process, with PoseReel's hooks.

The server runs in a thread of this process (moto's backends are process-global), so the hooks
patch the very moto that serves the requests. Everything else reaches it only through boto3 and
``AWS_ENDPOINT_URL`` (see ``LocalAws.environ``), so the same code works against AWS or LocalStack.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import socket
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, ClassVar, Self

from posereel_local.hooks import (
    BatchRunner,
    InstalledHooks,
    LambdaRunner,
    check_moto_internals,
    install_hooks,
)
from posereel_local.hooks.common import DEFAULT_PASS_ENV, LOCAL_CREDENTIAL, LocalEndpoint
from posereel_local.s3_reads import S3Reads

logger = logging.getLogger("posereel.local")

# moto logs every handled failure (a Catch-ed task, a missing item) at ERROR with huge reprs, and
# werkzeug logs every request.
_NOISY_LOGGERS = ("moto", "werkzeug")
# The local S3's socket send buffer (see S3Reads).
SEND_BUFFER_BYTES = 128 * 1024
_MOTO_CONFIG = {
    # Keep the Docker-backed Batch and Lambda backends: their Job/LambdaFunction are what we hook.
    "batch": {"use_docker": True},
    "lambda": {"use_docker": True},
    "stepfunctions": {"execute_state_machine": True},
}


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise OSError(f"port {port} on 127.0.0.1 is taken; pass port=0 to pick a free one") from exc


class LocalAws:
    """moto on 127.0.0.1 that runs real Lambda handlers, Batch commands and Step Functions.

    Use as a context manager (or ``start()`` / ``stop()``). State starts empty and is discarded on
    exit. Only one can run per process. Always give StartExecution a ``name`` when code must also
    run against older moto releases; here an unnamed execution gets a UUID, as in AWS.
    """

    _active: ClassVar[LocalAws | None] = None  # moto's backends are process-global
    _active_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        port: int = 0,
        region: str = "us-east-1",
        gpu_available: bool | None = None,
        lambda_code_paths: Sequence[str | os.PathLike[str]] = (),
        lambda_layer_paths: Sequence[str | os.PathLike[str]] = (),
        batch_workdir: str | os.PathLike[str] | None = None,
        image_entrypoints: Mapping[str, Sequence[str]] | None = None,
        max_parallel_jobs: int | None = None,
        pass_env: Sequence[str] = DEFAULT_PASS_ENV,
        quiet: bool = True,
    ) -> None:
        """
        port: 0 picks a free one. gpu_available: None detects with ``nvidia-smi -L``.
        lambda_code_paths: directories put first on a Lambda worker's PYTHONPATH (its /var/task).
        lambda_layer_paths: the layers' python/ folders, after them (/opt/python).
        batch_workdir: working directory of Batch job processes (default: this process's).
        image_entrypoints: image URI -> argv prepended to a job's command (the image's ENTRYPOINT).
        max_parallel_jobs: Batch jobs running at once (a compute environment's size); None: no limit.
        pass_env: host environment variables that Lambda workers and Batch jobs inherit.
        """
        self._port = port
        self.region = region
        self._gpu_available = gpu_available
        self._lambda_code_paths = lambda_code_paths
        self._lambda_layer_paths = lambda_layer_paths
        self._batch_workdir = batch_workdir
        self._image_entrypoints = image_entrypoints
        self._max_parallel_jobs = max_parallel_jobs
        self._pass_env = pass_env
        self._quiet = quiet
        self._server: Any = None
        # What the local S3 sent to each job's stages (in AWS: S3 server access logs).
        self.s3_reads: S3Reads | None = None
        self._hooks: InstalledHooks | None = None
        self._endpoint_url: str | None = None
        self._saved_env: dict[str, str | None] = {}
        self._saved_levels: dict[str, int] = {}
        self._saved_config: dict[str, Any] = {}

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("LocalAws is not started")
        return self._endpoint_url

    @property
    def hooks(self) -> InstalledHooks:
        """The installed hooks, with their Lambda and Batch runners."""
        if self._hooks is None:
            raise RuntimeError("LocalAws is not started")
        return self._hooks

    @property
    def environ(self) -> dict[str, str]:
        """Environment for any code (this process, a CLI, a test) to use this AWS via the SDK."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIAL,
            "AWS_SESSION_TOKEN": LOCAL_CREDENTIAL,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` on this endpoint (moto takes any credentials)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=LOCAL_CREDENTIAL,
            aws_secret_access_key=LOCAL_CREDENTIAL,
            aws_session_token=LOCAL_CREDENTIAL,
            **kwargs,
        )

    def _moto_api(self, path: str, body: Mapping[str, Any] | None = None) -> None:
        data = json.dumps(body or {}).encode()
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/{path}",
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
        with opener.open(request, timeout=30) as response:
            response.read()

    def start(self) -> Self:
        """Check moto's internals, start the server, install the hooks, reset and configure moto."""
        with LocalAws._active_lock:
            if LocalAws._active is not None:
                raise RuntimeError(
                    f"a LocalAws already runs in this process at {LocalAws._active._endpoint_url}"
                )
            LocalAws._active = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        logger.info("local AWS listening on %s", self._endpoint_url)
        return self

    def _start(self) -> None:
        check_moto_internals()
        from moto.core.config import default_user_config
        from moto.moto_server.threaded_moto_server import ThreadedMotoServer
        from werkzeug.serving import BaseWSGIServer

        if self._quiet:
            for name in _NOISY_LOGGERS:
                self._saved_levels[name] = logging.getLogger(name).level
                logging.getLogger(name).setLevel(logging.CRITICAL)
        self._saved_config = {key: copy.deepcopy(default_user_config.get(key)) for key in _MOTO_CONFIG}

        if self._port:
            _check_port_free(self._port)  # moto's server thread would hang start() on a taken port
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        self._server.start()
        wsgi = getattr(self._server, "_server", None)  # moto's werkzeug server (checked: private)
        if not isinstance(wsgi, BaseWSGIServer):
            raise RuntimeError("moto's ThreadedMotoServer no longer keeps its werkzeug server in _server")
        self.s3_reads = S3Reads(wsgi.app)
        wsgi.app = self.s3_reads
        # Connections it accepts inherit this: a reader that stops early (a range read) is sent
        # at most this much more than it took, not the 4 MB Linux grows a send buffer to.
        wsgi.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        host, port = self._server.get_host_and_port()
        self._endpoint_url = f"http://{host}:{port}"
        # moto's Step Functions interpreter calls services on localhost:$MOTO_PORT.
        self._set_env("MOTO_PORT", str(port))
        endpoint = LocalEndpoint(self._endpoint_url, tuple(self._pass_env))
        self._hooks = install_hooks(
            lambda_runner=LambdaRunner(
                endpoint, code_paths=self._lambda_code_paths, layer_paths=self._lambda_layer_paths
            ),
            batch_runner=BatchRunner(
                endpoint,
                gpu_available=self._gpu_available,
                workdir=self._batch_workdir,
                image_entrypoints=self._image_entrypoints,
                max_parallel_jobs=self._max_parallel_jobs,
            ),
        )
        self._moto_api("reset")
        self._moto_api("config", _MOTO_CONFIG)

    def _set_env(self, name: str, value: str) -> None:
        self._saved_env.setdefault(name, os.environ.get(name))
        os.environ[name] = value

    def stop(self) -> None:
        """Kill job processes and Lambda workers, discard all state, stop the server, unpatch moto."""
        if self._hooks is not None:
            self._hooks.batch_runner.close()
            self._hooks.lambda_runner.close()
        if self._server is not None:
            if self._endpoint_url is not None:
                try:
                    self._moto_api("reset")
                except OSError:
                    logger.warning("could not reset the local AWS on stop", exc_info=True)
            self._server.stop()
            self._server = None
        if self._hooks is not None:
            self._hooks.uninstall()
            self._hooks = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        if self._saved_config:
            from moto.core.config import default_user_config

            for key, value in self._saved_config.items():
                if value is not None:
                    default_user_config[key] = value  # type: ignore[literal-required]
            self._saved_config = {}
        for name, level in self._saved_levels.items():
            logging.getLogger(name).setLevel(level)
        self._saved_levels.clear()
        self._endpoint_url = None
        with LocalAws._active_lock:
            if LocalAws._active is self:
                LocalAws._active = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
