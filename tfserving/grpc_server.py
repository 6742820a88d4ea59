"""TF Serving's gRPC API for ``kva serve --port``: PredictionService and ModelService.

The same server also serves KServe v2 gRPC (:mod:`kva.tfserving.kserve_grpc`).

``Predict``, ``GetModelMetadata``, ``Classify``, ``Regress`` and ``MultiInference``
of ``tensorflow.serving.PredictionService`` (the last three for the models whose
REST ``:classify``/``:regress`` work, through :mod:`kva.tfserving.examples`)
and ``GetModelStatus`` of ``tensorflow.serving.ModelService``, over the same
:class:`~kva.tfserving.runtime.Runtime` as REST: the same loaded models, admission
control (``UNAVAILABLE`` beyond ``--max_inflight``) and Prometheus metrics
(protocol ``grpc``; the ``code`` label holds the HTTP status REST would answer).
Errors use TF Serving's gRPC codes: ``NOT_FOUND`` (model/version),
``INVALID_ARGUMENT`` (request), ``UNAVAILABLE`` (saturated), ``INTERNAL``.

Image models take a ``DT_STRING`` tensor of encoded JPEG/PNG images (shape
``[N]`` or ``[N, 1]``) for their uint8 ``image`` input, as REST takes b64.
GetModelMetadata also answers the kva extension field ``kva_labels``: the
class names as a ``DT_STRING`` TensorProto (absent when the model has none).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from kva import kserve_grpc_api as kserve_api
from kva.cliargs import SettingsError
from kva.dtypes import tf_name
from kva.grpc_api import (
    Api,
    GrpcNotInstalled,
    TensorError,
    load,
    make_ndarray,
    make_tensor_proto,
    shape_of,
)
from kva.tfserving.config import ServeSettings
from kva.tfserving.errors import InvalidArgument
from kva.tfserving.examples import Classes, classify, regress
from kva.tfserving.grpc_calls import RpcRunner
from kva.tfserving.kserve_grpc import generic_handler
from kva.tfserving.runtime import Runtime
from kva.tfserving.servable import Servable
from kva.tfserving.signatures import DEFAULT_SIGNATURE, METHODS, signature_defs
from kva.tfserving.tensors import ImageDecoder, TensorInfo, stack_images

logger = logging.getLogger(__name__)

SIGNATURE_FIELD = "signature_def"
LABELS_FIELD = "kva_labels"
PROTOCOL = "grpc"
_AVAILABLE = 30  # tensorflow.serving.ModelVersionStatus.State.AVAILABLE


def check_grpc() -> None:
    """Fail at start (exit 2) when ``--port`` is given without the ``[grpc]`` extra."""
    try:
        load()
        kserve_api.load()
    except GrpcNotInstalled as exc:
        raise SettingsError(f"--port: {exc}") from None


def start_grpc(runtime: Runtime, settings: ServeSettings) -> GrpcServer:
    """Start the gRPC server of ``kva serve`` next to REST (same host, threads, size limit)."""
    assert settings.grpc_port is not None  # noqa: S101 - the caller checks
    try:
        server = GrpcServer(
            runtime,
            settings.rest_api_host,
            settings.grpc_port,
            settings.worker_threads(),
            settings.serve_max_request_bytes,
        )
    except OSError as exc:
        raise SettingsError(f"--port {settings.grpc_port}: {exc}") from None
    server.start()
    logger.info(
        "serving gRPC on %s:%d (TF Serving's PredictionService and ModelService, "
        "KServe v2 GRPCInferenceService)",
        server.host,
        server.port,
    )
    return server


class GrpcServer:
    """A ``grpc.server`` with a thread pool serving ``runtime``'s models on ``host:port``."""

    def __init__(
        self, runtime: Runtime, host: str, port: int, threads: int, max_message_bytes: int
    ) -> None:
        self.api = load()
        grpc = self.api.grpc
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="kva-serve-grpc")
        self.server = grpc.server(
            self._pool,
            maximum_concurrent_rpcs=max(100, 4 * threads),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max(max_message_bytes, 64 * 1024 * 1024)),
                ("grpc.so_reuseport", 0),
            ],
        )
        handlers = _Handlers(self.api, runtime)
        self.api.prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _PredictionService(handlers), self.server
        )
        self.api.model_service_pb2_grpc.add_ModelServiceServicer_to_server(
            _ModelService(handlers), self.server
        )
        # KServe v2 gRPC on the same port, as OVMS serves it
        self.server.add_generic_rpc_handlers((generic_handler(kserve_api.load(), runtime),))
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self.port = int(self.server.add_insecure_port(address))
        except RuntimeError as exc:
            raise OSError(f"cannot bind gRPC to {address}: {exc}") from None
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {address} (in use?)")
        self.host = host
        self._stopped: threading.Event | None = None
        self._grace = 0.0

    def start(self) -> None:
        self.server.start()

    def begin_stop(self, grace: float = 5.0) -> None:
        """Refuse new RPCs now; running ones may finish for up to ``grace`` seconds."""
        if self._stopped is None:
            self._stopped = self.server.stop(grace)
            self._grace = grace

    def stop(self, grace: float = 5.0) -> None:
        """:meth:`begin_stop` (if not yet) and wait until the running RPCs are done."""
        self.begin_stop(grace)
        assert self._stopped is not None  # noqa: S101 - set by begin_stop
        self._stopped.wait(self._grace + 1.0)
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Handlers:
    """The RPC bodies: proto in, proto out; errors as :class:`ServingError`."""

    def __init__(self, api: Api, runtime: Runtime) -> None:
        self.api = api
        self.rt = runtime
        self.runner = RpcRunner(api.grpc, runtime, PROTOCOL)

    def call(self, name: str, handler: Callable[[Any], Any], request: Any, context: Any) -> Any:
        """Run ``handler`` with metrics; map errors to gRPC status codes."""
        return self.runner.call(name, handler, request, context, _model_name(request))

    # -- PredictionService -----------------------------------------------------------------
    def predict(self, request: Any) -> Any:
        servable = self._resolve(request.model_spec)
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        if signature != DEFAULT_SIGNATURE:
            raise InvalidArgument(
                f'Serving signature name: "{signature}" not found in signature def'
            )
        wanted = list(request.output_filter) or list(servable.outputs)
        unknown = sorted(set(wanted) - set(servable.outputs))
        if unknown:
            raise InvalidArgument(
                f"output tensor alias not found in signature: {', '.join(unknown)}. "
                f"Outputs expected to be in the set {{{','.join(sorted(servable.outputs))}}}."
            )
        decode = self.rt.image_decoder()  # one pixel budget for the request's images
        outputs = self.rt.execute(servable, lambda: self._feeds(servable, request.inputs, decode))
        response = self.api.predict_pb2.PredictResponse()
        self._spec(response.model_spec, servable, DEFAULT_SIGNATURE)
        for name in wanted:
            response.outputs[name].CopyFrom(make_tensor_proto(self.api, outputs[name]))
        return response

    def _feeds(
        self, servable: Servable, inputs: Any, decode: ImageDecoder
    ) -> dict[str, np.ndarray]:
        sent, expected = set(inputs), set(servable.inputs)
        if sent != expected:
            extra = ", ".join(sorted(sent - expected))
            missing = ", ".join(sorted(expected - sent))
            raise InvalidArgument(
                f"input size does not match signature: {len(sent)}!={len(expected)} "
                f"len({{{', '.join(sorted(sent))}}}) != len({{{', '.join(sorted(expected))}}}). "
                f"Sent extra: {{{extra}}}. Missing but required: {{{missing}}}."
            )
        return {name: self._tensor(servable, name, inputs[name], decode) for name in sorted(sent)}

    def _tensor(
        self, servable: Servable, name: str, proto: Any, decode: ImageDecoder
    ) -> np.ndarray:
        info = servable.inputs[name]
        string = self.api.types_pb2.DT_STRING
        try:
            if info.image_hw is not None and proto.dtype == string:
                return self._images(name, proto, info, decode)
            array = make_ndarray(self.api, proto, max_elements=self.rt.max_request_bytes)
        except TensorError as exc:
            raise InvalidArgument(f"input '{name}': {exc}") from None
        if array.dtype != info.dtype:
            got = self.api.types_pb2.DataType.Name(proto.dtype)
            want = tf_name(info.dtype)
            hint = " or DT_STRING with encoded images" if info.image_hw else ""
            raise InvalidArgument(f"input '{name}': expects {want}{hint} but got {got}")
        return array

    @staticmethod
    def _images(name: str, proto: Any, info: TensorInfo, decode: ImageDecoder) -> np.ndarray:
        shape = shape_of(proto)
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or not shape[0]:
            raise InvalidArgument(
                f"input '{name}': encoded images need shape [N] (or [N, 1]), got {list(shape)}"
            )
        if len(proto.string_val) != shape[0]:
            raise InvalidArgument(
                f"input '{name}': {len(proto.string_val)} images in string_val for shape "
                f"{list(shape)}"
            )
        return stack_images(list(proto.string_val), info, decode)

    def metadata(self, request: Any) -> Any:
        fields = list(request.metadata_field)
        if not fields:
            raise InvalidArgument(
                "GetModelMetadataRequest must specify at least one metadata_field"
            )
        for field in fields:
            if field not in (SIGNATURE_FIELD, LABELS_FIELD):
                raise InvalidArgument(f"Metadata field {field} is not supported")
        servable = self._resolve(request.model_spec)
        response = self.api.get_model_metadata_pb2.GetModelMetadataResponse()
        self._spec(response.model_spec, servable, "")
        if SIGNATURE_FIELD in fields:
            from google.protobuf import json_format

            signatures = self.api.get_model_metadata_pb2.SignatureDefMap()
            json_format.ParseDict({"signature_def": signature_defs(servable)}, signatures)
            response.metadata[SIGNATURE_FIELD].Pack(signatures)
        if LABELS_FIELD in fields and servable.labels is not None:
            labels = np.array([label.encode() for label in servable.labels], dtype=object)
            response.metadata[LABELS_FIELD].Pack(make_tensor_proto(self.api, labels))
        return response

    def classify(self, request: Any) -> Any:
        servable = self._resolve(request.model_spec)
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        results = classify(self.rt, servable, signature, _examples(request.input))
        response = self.api.classification_pb2.ClassificationResponse()
        self._spec(response.model_spec, servable, signature)
        _fill_classes(response.result, results)
        return response

    def regress(self, request: Any) -> Any:
        servable = self._resolve(request.model_spec)
        signature = request.model_spec.signature_name or DEFAULT_SIGNATURE
        values = regress(self.rt, servable, signature, _examples(request.input))
        response = self.api.regression_pb2.RegressionResponse()
        self._spec(response.model_spec, servable, signature)
        response.result.regressions.extend(
            self.api.regression_pb2.Regression(value=v) for v in values
        )
        return response

    def multi_inference(self, request: Any) -> Any:
        """Each task (classify or regress, one model) on the same examples, as TF Serving."""
        if not request.tasks:
            raise InvalidArgument("Tasks is empty")
        if len({task.model_spec.name for task in request.tasks}) != 1:
            raise InvalidArgument("All tasks should have the same model name")
        examples = _examples(request.input)
        methods = {path: method for method, path in METHODS.items()}
        response = self.api.inference_pb2.MultiInferenceResponse()
        for task in request.tasks:
            method = methods.get(task.method_name)
            if method not in ("classify", "regress"):
                raise InvalidArgument(f"Unsupported signature method_name: {task.method_name}")
            servable = self._resolve(task.model_spec)
            signature = task.model_spec.signature_name or DEFAULT_SIGNATURE
            result = response.results.add()
            self._spec(result.model_spec, servable, signature)
            if method == "classify":
                found = classify(self.rt, servable, signature, examples)
                _fill_classes(result.classification_result, found)
            else:
                values = regress(self.rt, servable, signature, examples)
                regression = self.api.regression_pb2.Regression
                result.regression_result.regressions.extend(regression(value=v) for v in values)
        return response

    # -- ModelService ----------------------------------------------------------------------
    def status(self, request: Any) -> Any:
        spec = request.model_spec
        if not spec.name:
            raise InvalidArgument("Missing model name in request.")
        label = spec.version_label or None
        versions = self.rt.manager.status_versions(spec.name, self._version(spec), label)
        response = self.api.get_model_status_pb2.GetModelStatusResponse()
        for number in versions:
            entry = response.model_version_status.add(version=number, state=_AVAILABLE)
            entry.status.SetInParent()  # error_code OK, error_message "" as TF Serving sends
        return response

    # -- helpers ---------------------------------------------------------------------------
    def _resolve(self, spec: Any) -> Servable:
        if not spec.name:
            raise InvalidArgument("Missing model name in request.")
        version = self._version(spec)
        label = spec.version_label or None
        return self.rt.manager.resolve(spec.name, version, label)

    @staticmethod
    def _version(spec: Any) -> int | None:
        return int(spec.version.value) if spec.HasField("version") else None

    @staticmethod
    def _spec(target: Any, servable: Servable, signature: str) -> None:
        target.name = servable.name
        target.version.value = servable.version
        target.signature_name = signature


def _model_name(request: Any) -> str:
    """The model a request names (a MultiInference request: its first task's)."""
    if request.DESCRIPTOR.fields_by_name.get("model_spec") is not None:
        return str(request.model_spec.name)
    return str(request.tasks[0].model_spec.name) if request.tasks else ""


def _examples(proto: Any) -> dict[str, Any]:
    """A ``tensorflow.serving.Input`` in the REST form: ``{"examples": [...], "context": {}}``."""
    kind = proto.WhichOneof("kind")
    if kind == "example_list":
        examples, context = proto.example_list.examples, None
    elif kind == "example_list_with_context":
        examples, context = proto.example_list_with_context.examples, None
        if proto.example_list_with_context.HasField("context"):
            context = proto.example_list_with_context.context
    else:
        raise InvalidArgument("Input is empty")
    body: dict[str, Any] = {"examples": [_features(example) for example in examples]}
    if context is not None:
        body["context"] = _features(context)
    return body


def _features(example: Any) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "float_list":
            found[name] = list(feature.float_list.value)
        elif kind == "int64_list":
            found[name] = [float(v) for v in feature.int64_list.value]
        else:
            raise InvalidArgument(f"feature '{name}' must be a float_list or an int64_list")
    return found


def _fill_classes(result: Any, results: list[Classes]) -> None:
    for row in results:
        classes = result.classifications.add()
        for label, score in row:
            classes.classes.add(label=label, score=score)


class _PredictionService:
    def __init__(self, handlers: _Handlers) -> None:
        self._h = handlers

    def Predict(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        return self._h.call("Predict", self._h.predict, request, context)

    def GetModelMetadata(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._h.call("GetModelMetadata", self._h.metadata, request, context)

    def Classify(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._h.call("Classify", self._h.classify, request, context)

    def Regress(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._h.call("Regress", self._h.regress, request, context)

    def MultiInference(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._h.call("MultiInference", self._h.multi_inference, request, context)


class _ModelService:
    def __init__(self, handlers: _Handlers) -> None:
        self._h = handlers

    def GetModelStatus(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self._h.call("GetModelStatus", self._h.status, request, context)

    def HandleReloadConfigRequest(self, request: Any, context: Any) -> Any:  # noqa: N802
        context.abort(
            self._h.api.grpc.StatusCode.UNIMPLEMENTED, "model config reload is not served"
        )
