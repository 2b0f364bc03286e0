"""The embedded local AWS: moto in server mode, hooked to run PoseReel's real handlers, Batch
job commands and Step Functions workflow on one machine.

Importing this package is cheap (standard library only); moto and boto3 load when a LocalAws
starts, because Lambda worker processes import this package too.
"""

from posereel.local.hooks import (
    BatchRunner,
    InstalledHooks,
    LambdaRunner,
    LocalEndpoint,
    MotoInternalsChangedError,
    check_moto_internals,
    install_hooks,
    nvidia_gpu_usable,
    substitute_refs,
)
from posereel.local.server import LocalAws

__all__ = [
    "BatchRunner",
    "InstalledHooks",
    "LambdaRunner",
    "LocalAws",
    "LocalEndpoint",
    "MotoInternalsChangedError",
    "check_moto_internals",
    "install_hooks",
    "nvidia_gpu_usable",
    "substitute_refs",
]
