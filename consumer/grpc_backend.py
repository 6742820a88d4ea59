"""gRPC backend: TF Serving's ``PredictionService`` / ``ModelService`` at ``grpc://host:port/<m>``.

One ``grpc.Channel`` per replica (HTTP/2 multiplexes the concurrent calls).
Every call has a deadline of connect + read timeout; gRPC status codes become
:class:`~kva.consumer.errors.InferenceError` reasons as the REST backends name
them: client errors (``NOT_FOUND``, ``INVALID_ARGUMENT``, ...) are
``http_4xx`` and not retried, ``DEADLINE_EXCEEDED`` is ``timeout``, an
unreachable server is ``connect``, the rest (``UNAVAILABLE`` when saturated,
``INTERNAL``) are ``http_5xx``. The health probe is ``GetModelStatus``.
Needs the ``[grpc]`` extra; this module is imported only for ``grpc://`` and
``kserve+grpc://`` URLs (:class:`ChannelBackend` is the base of both gRPC backends;
importing this module imports no TF Serving proto).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import numpy as np

from kva import dtypes
from kva.consumer.backend_api import Backend, ModelInfo, Outputs, Payload, model_info
from kva.consumer.errors import InferenceError, MetadataError
from kva.grpc_api import (
    MAX_CLIENT_MESSAGE_BYTES,
    GrpcTarget,
    TensorError,
    dtype_name,
    load,
    make_ndarray,
    make_tensor_proto,
    parse_grpc_url,
)

_CLIENT_ERRORS = frozenset(
    {
        "INVALID_ARGUMENT",
        "NOT_FOUND",
        "FAILED_PRECONDITION",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "PERMISSION_DENIED",
        "UNAUTHENTICATED",
        "ALREADY_EXISTS",
    }
)
_AVAILABLE = 30  # tensorflow.serving.ModelVersionStatus.State.AVAILABLE
_LABELS_FIELD = "kva_labels"


class ChannelBackend(Backend):
    """One gRPC replica: its channel, the deadline of a call, and gRPC errors made typed.

    The base of both gRPC backends (TF Serving's API here, KServe v2's in
    :mod:`~kva.consumer.kserve_grpc_backend`), so they time out, classify failures
    and close alike.
    """

    def __init__(
        self,
        url: str,
        target: GrpcTarget,
        grpc: Any,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
    ) -> None:
        self.grpc = grpc
        self.url = url.rstrip("/")
        self.model_name = target.model
        self.version = target.version
        self.server = f"{urlsplit(url).scheme}://{target.target}"
        self.timeout = (connect_timeout, read_timeout)
        self.deadline = connect_timeout + read_timeout
        self.channel = grpc.insecure_channel(
            target.target,
            options=[
                ("grpc.max_receive_message_length", MAX_CLIENT_MESSAGE_BYTES),
                ("grpc.max_send_message_length", MAX_CLIENT_MESSAGE_BYTES),
                ("grpc.primary_user_agent", "kva-consume"),
                ("grpc.enable_retries", 0),
            ],
        )

    def close(self) -> None:
        self.channel.close()

    def _call(self, method: Any, request: Any, what: str) -> Any:
        """``method(request)`` within the deadline; a failure as :class:`InferenceError`."""
        grpc = self.grpc
        try:
            return method(request, timeout=self.deadline)
        except grpc.RpcError as exc:
            code = exc.code()
            detail = f"{self.url}: {what}: {code.name} {str(exc.details())[:200]}"
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise InferenceError("timeout", detail, retriable=True) from None
            if code.name in _CLIENT_ERRORS:
                raise InferenceError("http_4xx", detail, retriable=False) from None
            if code == grpc.StatusCode.UNAVAILABLE and _unreachable(str(exc.details())):
                raise InferenceError("connect", detail, retriable=True) from None
            raise InferenceError("http_5xx", detail, retriable=True) from None


class GrpcBackend(ChannelBackend):
    """One TF Serving-compatible gRPC replica of one model."""

    protocol = "grpc"

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
        pool_size: int = 4,
    ) -> None:
        target = parse_grpc_url(url)
        self.api = load()
        super().__init__(
            url,
            target,
            self.api.grpc,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self.predictions = self.api.prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = self.api.model_service_pb2_grpc.ModelServiceStub(self.channel)

    def _model_spec(self, spec: Any) -> None:
        spec.name = self.model_name
        if self.version is not None:
            spec.version.value = self.version

    def ready(self) -> bool:
        request = self.api.get_model_status_pb2.GetModelStatusRequest()
        self._model_spec(request.model_spec)
        try:
            response = self._call(self.models.GetModelStatus, request, "GetModelStatus")
        except InferenceError:
            return False
        return any(s.state == _AVAILABLE for s in response.model_version_status)

    def _metadata(self, field: str) -> Any:
        request = self.api.get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=[field])
        self._model_spec(request.model_spec)
        return self._call(self.predictions.GetModelMetadata, request, "GetModelMetadata")

    def metadata(self) -> ModelInfo:
        response = self._metadata("signature_def")
        signatures = self.api.get_model_metadata_pb2.SignatureDefMap()
        if "signature_def" not in response.metadata or not response.metadata[
            "signature_def"
        ].Unpack(signatures):
            raise MetadataError(f"{self.url}: metadata holds no SignatureDefMap")
        found = signatures.signature_def
        if not found:
            raise MetadataError(f"{self.url}: no signature_def with inputs and outputs")
        signature = (
            found["serving_default"] if "serving_default" in found else next(iter(found.values()))
        )
        shapes = [
            (name, [int(d.size) for d in tensor.tensor_shape.dim], self._dtype(tensor.dtype))
            for name, tensor in signature.inputs.items()
        ]
        return model_info(self.model_name, self.url, shapes, signature.outputs)

    def _dtype(self, value: int) -> np.dtype | None:
        found = dtypes.of_tf(dtype_name(self.api, value))
        return None if found is None else found.numpy

    def labels(self) -> list[str] | None:
        """kva's ``kva_labels`` metadata field; None when absent or not supported."""
        try:
            response = self._metadata(_LABELS_FIELD)
        except InferenceError as exc:
            if exc.reason == "http_4xx":
                return None  # e.g. real TF Serving: "Metadata field ... is not supported"
            raise
        if _LABELS_FIELD not in response.metadata:
            return None
        proto = self.api.tensor_pb2.TensorProto()
        if not response.metadata[_LABELS_FIELD].Unpack(proto):
            raise InferenceError(
                "bad_response", f"{self.url}: labels are not a TensorProto", retriable=False
            )
        return [value.decode("utf-8", "replace") for value in proto.string_val]

    def infer(self, info: ModelInfo, payload: Payload) -> Outputs:
        request = self.api.predict_pb2.PredictRequest()
        self._model_spec(request.model_spec)
        tensor = np.array([payload], dtype=object) if isinstance(payload, bytes) else payload
        request.inputs[info.input_name].CopyFrom(make_tensor_proto(self.api, tensor))
        request.output_filter.extend(info.outputs)
        response = self._call(self.predictions.Predict, request, "Predict")
        missing = [name for name in info.outputs if name not in response.outputs]
        if missing:
            raise InferenceError(
                "bad_response", f"{self.url}: Predict answer lacks {missing}", retriable=True
            )
        try:
            outputs = {
                name: make_ndarray(self.api, response.outputs[name]) for name in info.outputs
            }
            return {name: array[0] for name, array in outputs.items()}
        except (TensorError, IndexError) as exc:
            raise InferenceError(
                "bad_response", f"{self.url}: unexpected Predict answer ({exc})", retriable=True
            ) from None


def _unreachable(details: str) -> bool:
    text = details.lower()
    return any(
        marker in text
        for marker in (
            "failed to connect",
            "connection refused",
            "dns resolution",
            "connect failed",
        )
    )
