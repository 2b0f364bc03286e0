"""Step Functions fidelity: what moto's interpreter does differently from AWS, fixed.

* ``StateTaskService._normalise_parameters`` / ``_normalise_response`` (empty in moto) map ASL's
  PascalCase (``JobName``) to boto3's casing and back, with botocore's service model;
* ``StepFunctionsParserBackend.start_execution`` names an unnamed execution with a UUID (moto
  names it "None", so a second one collides);
* ``StateTaskServiceBatch._build_sync_resolver`` and ``StateTaskServiceCallback._eval_sync``:
  when an execution is stopped while it waits on a ``batch:submitJob.sync`` job, the job is
  terminated, as Step Functions does in AWS (moto left it running);
* ``Environment.set_error`` no longer turns a stopped execution FAILED when a task ends after the
  stop (it stays ABORTED);
* the Map iteration worker's ``CustomErrorName`` refuses the "States." names an iteration fails
  with (States.TaskFailed of a Batch job, States.Timeout), so every such Map failure became
  States.Runtime with that complaint as its cause; it now keeps the iteration's error and cause.
"""

from __future__ import annotations

import importlib
import threading
import uuid
from typing import TYPE_CHECKING, Any, Final

from posereel_local.hooks.common import logger
from posereel_local.hooks.moto_check import Attributes, Signature

if TYPE_CHECKING:
    from botocore.model import OperationModel

    from posereel_local.hooks import Patcher

_SERVICE_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service"
)
_MAP_ITERATION_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.iteration_worker"
)
_CALLBACK_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback"
)
_BATCH_MODULE: Final = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch"
)
_ENVIRONMENT_MODULE: Final = "moto.stepfunctions.parser.asl.eval.environment"
_PROGRAM_STATE_MODULE: Final = "moto.stepfunctions.parser.asl.eval.program_state"
_STATES_ERROR_MODULE: Final = "moto.stepfunctions.parser.asl.component.common.error_name.states_error_name"

SIGNATURES: Final = (
    Signature(
        _SERVICE_MODULE,
        "StateTaskService._normalise_parameters",
        ("self", "parameters", "boto_service_name", "service_action_name"),
    ),
    Signature(
        _SERVICE_MODULE,
        "StateTaskService._normalise_response",
        ("self", "response", "boto_service_name", "service_action_name"),
    ),
    Signature(
        _SERVICE_MODULE, "StateTaskService._to_boto_request", ("self", "parameters", "structure_shape")
    ),
    Signature(
        _SERVICE_MODULE, "StateTaskService._from_boto_response", ("self", "response", "structure_shape")
    ),
    Signature(_SERVICE_MODULE, "StateTaskService._get_boto_service_name", ("self", "boto_service_name")),
    Signature(_SERVICE_MODULE, "StateTaskService._get_boto_service_action", ("self", "service_action_name")),
    Signature(
        "moto.stepfunctions.parser.models",
        "StepFunctionsParserBackend.start_execution",
        ("self", "state_machine_arn", "name", "execution_input", "trace_header"),
    ),
    Signature("moto.settings", "moto_server_port", ()),
    Signature(
        _BATCH_MODULE,
        "StateTaskServiceBatch._build_sync_resolver",
        ("self", "env", "resource_runtime_part", "normalised_parameters", "state_credentials"),
    ),
    Signature(
        _CALLBACK_MODULE,
        "StateTaskServiceCallback._eval_sync",
        ("self", "env", "sync_resolver", "timeout_seconds", "callback_endpoint", "heartbeat_endpoint"),
    ),
    Signature("moto.batch.models", "BatchBackend.terminate_job", ("self", "job_id", "reason")),
    Signature(_ENVIRONMENT_MODULE, "Environment.set_error", ("self", "error")),
    Signature(_PROGRAM_STATE_MODULE, "ProgramStopped", ("stop_date", "error", "cause")),
    Signature(_MAP_ITERATION_MODULE, "CustomErrorName", ("error_name",)),
    Signature(_STATES_ERROR_MODULE, "StatesErrorName.from_name", ("error_name",)),
)
ATTRIBUTES: Final = (Attributes(_ENVIRONMENT_MODULE, "Environment", ("_program_state",)),)

_SERVICE_MODELS: dict[str, Any] = {}
_OPERATION_NAMES: dict[str, dict[str, str]] = {}
_MODELS_LOCK = threading.Lock()


def _operation_model(service: str, action: str) -> OperationModel | None:
    """botocore's model of ``service``'s ``action`` (given in any casing), or None if unknown."""
    from botocore import xform_name
    from botocore.exceptions import UnknownServiceError
    from botocore.session import get_session

    with _MODELS_LOCK:
        if service not in _SERVICE_MODELS:
            try:
                model = get_session().get_service_model(service)
            except UnknownServiceError:
                model = None
            _SERVICE_MODELS[service] = model
            _OPERATION_NAMES[service] = (
                {xform_name(name): name for name in model.operation_names} if model is not None else {}
            )
        model = _SERVICE_MODELS[service]
        names = _OPERATION_NAMES[service]
    name = names.get(xform_name(action)) or names.get(xform_name(action[:1].upper() + action[1:]))
    if model is None or name is None:
        return None
    return model.operation_model(name)


def _task_operation(task: Any, boto_service_name: str | None, service_action_name: str | None) -> Any:
    """The botocore operation a Step Functions service task calls (None when unknown)."""
    return _operation_model(
        task._get_boto_service_name(boto_service_name=boto_service_name),
        task._get_boto_service_action(service_action_name=service_action_name),
    )


def _normalise_parameters(
    self: Any,
    parameters: dict[str, Any],
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    """ASL names parameters in PascalCase (``JobName``); map them onto boto3's members (``jobName``)."""
    operation = _task_operation(self, boto_service_name, service_action_name)
    if operation is not None and operation.input_shape is not None:
        self._to_boto_request(parameters, operation.input_shape)


def _normalise_response(
    self: Any,
    response: Any,
    boto_service_name: str | None = None,
    service_action_name: str | None = None,
) -> None:
    """Give results Step Functions' PascalCase (``$.JobId``, ``$.Status``), in place, as AWS does."""
    operation = _task_operation(self, boto_service_name, service_action_name)
    if operation is not None and operation.output_shape is not None:
        self._from_boto_response(response, operation.output_shape)


def install(patcher: Patcher) -> None:
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    service = importlib.import_module(_SERVICE_MODULE).StateTaskService
    patcher.patch(service, "_normalise_parameters", _normalise_parameters)
    patcher.patch(service, "_normalise_response", _normalise_response)

    original_start = StepFunctionsParserBackend.__dict__["start_execution"]

    def start_execution(
        self: Any,
        state_machine_arn: str,
        name: str | None = None,
        execution_input: str | None = None,
        trace_header: str | None = None,
    ) -> Any:
        return original_start(
            self, state_machine_arn, name or str(uuid.uuid4()), execution_input, trace_header
        )

    patcher.patch(StepFunctionsParserBackend, "start_execution", start_execution)
    _install_stop_semantics(patcher)
    _install_map_error_names(patcher)


def _install_stop_semantics(patcher: Patcher) -> None:
    """A stopped execution terminates the Batch job it waits on and stays ABORTED."""
    batch_service = importlib.import_module(_BATCH_MODULE).StateTaskServiceBatch
    callback_service = importlib.import_module(_CALLBACK_MODULE).StateTaskServiceCallback
    environment = importlib.import_module(_ENVIRONMENT_MODULE).Environment
    program_stopped = importlib.import_module(_PROGRAM_STATE_MODULE).ProgramStopped
    original_build_sync = batch_service.__dict__["_build_sync_resolver"]
    original_eval_sync = callback_service.__dict__["_eval_sync"]
    original_set_error = environment.__dict__["set_error"]

    def build_sync_resolver(
        self: Any, env: Any, resource_runtime_part: Any, normalised_parameters: Any, state_credentials: Any
    ) -> Any:
        job_id = env.stack[-1].get("JobId") if env.stack and isinstance(env.stack[-1], dict) else None
        resolver = original_build_sync(
            self, env, resource_runtime_part, normalised_parameters, state_credentials
        )
        if resolver is not None:  # eval_sync below reads which job it waits on
            resolver.batch_job = (resource_runtime_part.account, resource_runtime_part.region, job_id)
        return resolver

    def eval_sync(
        self: Any,
        env: Any,
        sync_resolver: Any,
        timeout_seconds: Any,
        callback_endpoint: Any,
        heartbeat_endpoint: Any,
    ) -> Any:
        result = original_eval_sync(
            self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint
        )
        account, region, job_id = getattr(sync_resolver, "batch_job", ("", "", None))
        if job_id and not env.is_running():  # the execution was stopped while the job ran
            from moto.batch.models import batch_backends

            batch_backends[account][region].terminate_job(job_id, "the workflow execution was stopped")
            logger.info("local Step Functions: stopped execution, terminated Batch job %s", job_id)
        return result

    def set_error(self: Any, error: Any) -> None:
        # A task that fails after its execution was stopped (a terminated Batch job) must not
        # turn the ABORTED execution FAILED: in AWS a stopped execution stays ABORTED.
        if isinstance(self._program_state, program_stopped):
            return
        original_set_error(self, error)

    patcher.patch(environment, "set_error", set_error)
    patcher.patch(batch_service, "_build_sync_resolver", build_sync_resolver)
    patcher.patch(callback_service, "_eval_sync", eval_sync)


def _install_map_error_names(patcher: Patcher) -> None:
    """A failed Map iteration hands its own "States." error name up to the Map, as in AWS."""
    iteration_module = importlib.import_module(_MAP_ITERATION_MODULE)
    custom_error_name = iteration_module.__dict__["CustomErrorName"]
    states_error_name = importlib.import_module(_STATES_ERROR_MODULE).StatesErrorName

    def iteration_error_name(error_name: str | None) -> Any:
        if error_name is not None and error_name.startswith("States."):
            try:
                return states_error_name.from_name(error_name)
            except (KeyError, ValueError):
                pass
        return custom_error_name(error_name=error_name)

    patcher.patch(iteration_module, "CustomErrorName", iteration_error_name)
