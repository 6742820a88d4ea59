"""KServe v2 gRPC backend: ``inference.GRPCInferenceService`` at ``kserve+grpc://host:port/<m>``.

The Open Inference Protocol over gRPC, as ``kva serve --port``, OVMS and Triton
serve it, with the messages of :mod:`kva.kserve_grpc_api` (kva's own table in a
private descriptor pool: grpcio and protobuf only, no TF Serving protos, no
tritonclient). It sends what the REST ``/v2`` backend sends: the frame's JPEG as
one ``BYTES`` element of shape ``[1]``, here in ``raw_input_contents``, and asks
for the model's outputs by name. Outputs are read from ``raw_output_contents``
(Triton, kva serve and OVMS answer there) or from typed ``contents``; the
decoding into :data:`~kva.consumer.backend_api.Outputs` is the REST backend's
(:mod:`~kva.consumer.v2_tensors`), so both give the same predictions.

Deadlines and the mapping of gRPC status codes to retriable or not are those of
:class:`~kva.consumer.grpc_backend.ChannelBackend`. The health probe is
``ModelReady``. KServe v2 has no class names: :meth:`KServeGrpcBackend.labels`
is None (``--labels`` or another replica's labels are used).
"""

from __future__ import annotations

from typing import Any

from kva import dtypes, kserve_grpc_api
from kva.consumer.backend_api import ModelInfo, Outputs, Payload, model_info
from kva.consumer.errors import InferenceError, MetadataError
from kva.consumer.grpc_backend import ChannelBackend
from kva.consumer.v2_tensors import V2Input, V2Tensor, decode_outputs
from kva.grpc_api import parse_grpc_url

SCHEME = "kserve+grpc"


class KServeGrpcBackend(ChannelBackend):
    """One KServe v2 gRPC replica of one model."""

    protocol = "kserve_grpc"

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 1.0,
        read_timeout: float = 2.0,
        pool_size: int = 4,
    ) -> None:
        target = parse_grpc_url(url, scheme=SCHEME)
        self.api = kserve_grpc_api.load()
        super().__init__(
            url,
            target,
            self.api.grpc,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )
        self.model_version = "" if self.version is None else str(self.version)
        self._methods = {
            name: self.channel.unary_unary(
                f"/{kserve_grpc_api.SERVICE}/{name}",
                request_serializer=self.api.message(request).SerializeToString,
                response_deserializer=self.api.message(response).FromString,
            )
            for name, (request, response) in kserve_grpc_api.METHODS.items()
            if name in ("ModelReady", "ModelMetadata", "ModelInfer")
        }

    def _rpc(self, name: str, request: Any) -> Any:
        return self._call(self._methods[name], request, name)

    def ready(self) -> bool:
        request = self.api.message("ModelReadyRequest")(
            name=self.model_name, version=self.model_version
        )
        try:
            return bool(self._rpc("ModelReady", request).ready)
        except InferenceError:
            return False

    def metadata(self) -> ModelInfo:
        request = self.api.message("ModelMetadataRequest")(
            name=self.model_name, version=self.model_version
        )
        response = self._rpc("ModelMetadata", request)
        if not response.outputs:
            raise MetadataError(f"{self.url}: ModelMetadata lists no outputs")
        inputs = [
            (tensor.name, list(tensor.shape), dtypes.from_v2(tensor.datatype))
            for tensor in response.inputs
        ]
        return model_info(self.model_name, self.url, inputs, [o.name for o in response.outputs])

    def labels(self) -> list[str] | None:
        """None: KServe v2 gRPC has no call for class names."""
        return None

    def infer(self, info: ModelInfo, payload: Payload) -> Outputs:
        request = self.api.message("ModelInferRequest")(
            model_name=self.model_name, model_version=self.model_version
        )
        tensor = V2Input.of(payload)
        request.inputs.add(name=info.input_name, datatype=tensor.datatype, shape=tensor.shape)
        for name in info.outputs:
            request.outputs.add(name=name)
        request.raw_input_contents.append(tensor.raw)
        response = self._rpc("ModelInfer", request)
        return decode_outputs(response_tensors(response), info, self.url)


def response_tensors(response: Any) -> list[V2Tensor]:
    """The outputs of a ``ModelInferResponse``: raw when it has ``raw_output_contents``
    (one entry per output, in order), else typed ``contents``."""
    raw = list(response.raw_output_contents)
    tensors = []
    for index, output in enumerate(response.outputs):
        name, datatype, shape = output.name, output.datatype, list(output.shape)
        if raw:
            chunk = raw[index] if index < len(raw) else b""
            tensors.append(V2Tensor(name, datatype, shape, raw=chunk))
            continue
        field = kserve_grpc_api.CONTENTS_FIELD.get(datatype)
        values = list(getattr(output.contents, field)) if field else None
        tensors.append(V2Tensor(name, datatype, shape, values=values))
    return tensors
