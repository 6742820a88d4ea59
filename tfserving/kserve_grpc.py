"""KServe v2 gRPC (``inference.GRPCInferenceService``) for ``kva serve --port``, as OVMS serves it.

ServerLive, ServerReady, ModelReady, ServerMetadata, ModelMetadata and ModelInfer
of the Open Inference Protocol, plus Triton's ModelConfig, ModelStatistics and
RepositoryIndex (what tritonclient calls), on the same port and over the same
:class:`~kva.tfserving.runtime.Runtime` as REST ``/v2`` and TF Serving's gRPC:
the same models, admission control, metrics (``protocol="kserve_grpc"``) and
errors (:mod:`kva.tfserving.grpc_calls`). Version ``""`` or ``"0"`` is the latest.

ModelInfer takes each input either in ``raw_input_contents`` (one entry per
input, in input order, as tritonclient sends them) or as typed ``contents``.
An image model's uint8 image input also takes ``BYTES`` of shape ``[N]``: N
encoded JPEG/PNG images, decoded as REST ``/v2`` decodes them. Outputs are sent
in ``raw_output_contents``, as Triton does; ``outputs`` selects some of them.
No request parameter changes the answer (``binary_data*`` belong to REST), and
the request ``id`` is echoed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kva import __version__
from kva.dtypes import v2_name
from kva.kserve_grpc_api import CONTENTS_FIELD, METHODS, SERVICE, KServeApi
from kva.tfserving import triton_info
from kva.tfserving.errors import InvalidArgument, NotFound
from kva.tfserving.grpc_calls import RpcRunner
from kva.tfserving.runtime import Runtime
from kva.tfserving.servable import Servable
from kva.tfserving.tensors import ImageDecoder, TensorInfo
from kva.tfserving.v2_codec import (
    check_shape,
    decode_images,
    from_raw,
    model_dtype,
    raw_elements,
    strings_array,
    takes_images,
    tensor_meta,
    to_raw,
)

PROTOCOL = "kserve_grpc"
#: What ServerMetadata lists: Triton's names of the extensions served here.
EXTENSIONS = ["model_configuration", "statistics"]


def generic_handler(api: KServeApi, runtime: Runtime) -> Any:
    """The ``grpc`` handler of every method of :data:`~kva.kserve_grpc_api.SERVICE`."""
    grpc = api.grpc
    service = KServeService(api, runtime)
    handlers = {}
    for method, (request, response) in METHODS.items():
        handlers[method] = grpc.unary_unary_rpc_method_handler(
            service.method(method),
            request_deserializer=api.message(request).FromString,
            response_serializer=api.message(response).SerializeToString,
        )
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


class KServeService:
    """The method bodies: message in, message out; errors as :class:`ServingError`."""

    def __init__(self, api: KServeApi, runtime: Runtime) -> None:
        self.api = api
        self.rt = runtime
        self.runner = RpcRunner(api.grpc, runtime, PROTOCOL)

    def method(self, name: str) -> Any:
        """The ``(request, context)`` callable of rpc ``name``."""
        body = getattr(self, _snake(name))

        def rpc(request: Any, context: Any) -> Any:
            model = str(getattr(request, "model_name", "") or getattr(request, "name", ""))
            return self.runner.call(name, body, request, context, model)

        return rpc

    def _new(self, message: str, /, **fields: Any) -> Any:
        return self.api.message(message)(**fields)

    # -- health and metadata ----------------------------------------------------------
    def server_live(self, request: Any) -> Any:
        return self._new("ServerLiveResponse", live=True)

    def server_ready(self, request: Any) -> Any:
        return self._new("ServerReadyResponse", ready=self.rt.manager.ready())

    def model_ready(self, request: Any) -> Any:
        """Unknown model: NOT_FOUND; configured but not (yet) loaded or saturated: false."""
        self.rt.manager.state(_name(request.name))
        try:
            self._resolve(request.name, request.version)
        except NotFound:
            return self._new("ModelReadyResponse", ready=False)
        return self._new("ModelReadyResponse", ready=self.rt.manager.model_ready(request.name))

    def server_metadata(self, request: Any) -> Any:
        return self._new(
            "ServerMetadataResponse", name="kva", version=__version__, extensions=EXTENSIONS
        )

    def model_metadata(self, request: Any) -> Any:
        servable = self._resolve(request.name, request.version)
        versions = sorted(self.rt.manager.state(servable.name).versions)
        return self._new(
            "ModelMetadataResponse",
            name=servable.name,
            versions=[str(v) for v in versions],
            platform="openvino",
            inputs=[tensor_meta(info) for info in servable.inputs.values()],
            outputs=[tensor_meta(info) for info in servable.outputs.values()],
        )

    # -- Triton's extensions ---------------------------------------------------------
    def model_config(self, request: Any) -> Any:
        servable = self._resolve(request.name, request.version)
        return self._parse(
            "ModelConfigResponse", {"config": triton_info.model_config(self.rt, servable)}
        )

    def model_statistics(self, request: Any) -> Any:
        if not request.name:
            return self._parse("ModelStatisticsResponse", triton_info.all_stats(self.rt))
        servable = self._resolve(request.name, request.version)
        one = request.version not in ("", "0")
        found = triton_info.model_stats(self.rt, servable, one)
        return self._parse("ModelStatisticsResponse", found)

    def repository_index(self, request: Any) -> Any:
        index = triton_info.repository_index(self.rt, request.ready)
        return self._parse("RepositoryIndexResponse", {"models": index})

    def _parse(self, name: str, body: dict[str, Any]) -> Any:
        """Triton's JSON answer as message ``name`` (fields kva does not declare are left out)."""
        from google.protobuf import json_format

        return json_format.ParseDict(body, self._new(name), ignore_unknown_fields=True)

    # -- inference --------------------------------------------------------------------
    def model_infer(self, request: Any) -> Any:
        servable = self._resolve(request.model_name, request.model_version)
        wanted = [out.name for out in request.outputs] or list(servable.outputs)
        for name in wanted:
            if name not in servable.outputs:
                known = ", ".join(servable.outputs)
                raise InvalidArgument(f"unknown output '{name}' (the model has: {known})")
        decode = self.rt.image_decoder()  # one pixel budget for the request's images
        outputs = self.rt.execute(servable, lambda: self._feeds(request, servable, decode))
        response = self._new(
            "ModelInferResponse",
            model_name=servable.name,
            model_version=str(servable.version),
            id=request.id,
        )
        for name in wanted:
            array = outputs[name]
            response.outputs.add(name=name, datatype=v2_name(array.dtype), shape=array.shape)
            response.raw_output_contents.append(to_raw(array))
        return response

    def _feeds(
        self, request: Any, servable: Servable, decode: ImageDecoder
    ) -> dict[str, np.ndarray]:
        raw = list(request.raw_input_contents)
        if raw and len(raw) != len(request.inputs):
            raise InvalidArgument(
                f"expected {len(request.inputs)} raw_input_contents (one per input), got {len(raw)}"
            )
        feeds: dict[str, np.ndarray] = {}
        for index, tensor in enumerate(request.inputs):
            info = servable.inputs.get(tensor.name)
            if info is None:
                raise InvalidArgument(
                    f"unknown input '{tensor.name}' (the model has: {', '.join(servable.inputs)})"
                )
            if tensor.name in feeds:
                raise InvalidArgument(f"input '{tensor.name}' given twice")
            chunk = raw[index] if raw else None
            if chunk is not None and tensor.HasField("contents"):
                raise InvalidArgument(
                    f"input '{tensor.name}': give contents or raw_input_contents, not both"
                )
            feeds[tensor.name] = _tensor(tensor, info, chunk, decode)
        missing = set(servable.inputs) - set(feeds)
        if missing:
            raise InvalidArgument(f"missing inputs: {', '.join(sorted(missing))}")
        return feeds

    def _resolve(self, name: str, version: str) -> Servable:
        return self.rt.manager.resolve(_name(name), _version(version))


def _tensor(tensor: Any, info: TensorInfo, chunk: bytes | None, decode: ImageDecoder) -> np.ndarray:
    name, datatype = info.name, tensor.datatype
    shape = check_shape(name, list(tensor.shape))
    count = math.prod(shape)
    if takes_images(datatype, info) or (datatype == "BYTES" and info.dtype == np.dtype(object)):
        if chunk is not None:
            elements = raw_elements(name, chunk, count)
        else:
            elements = list(tensor.contents.bytes_contents)
            if len(elements) != count:
                raise InvalidArgument(f"input '{name}': expected {count} BYTES elements")
        if takes_images(datatype, info):
            return decode_images(name, shape, elements, info, decode)
        return strings_array(elements, shape)
    dtype = model_dtype(name, datatype, info)
    if chunk is not None:
        return from_raw(name, chunk, shape, dtype)
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidArgument(f"input '{name}': {datatype} has no typed contents: send it raw")
    values = getattr(tensor.contents, field)
    if len(values) != count:
        raise InvalidArgument(f"input '{name}': {len(values)} values for shape {shape}")
    try:
        return np.array(values, dtype=dtype).reshape(shape)
    except OverflowError:
        raise InvalidArgument(f"input '{name}': a value is out of range for {datatype}") from None


def _name(name: str) -> str:
    if not name:
        raise InvalidArgument("Missing model name in request.")
    return name


def _version(text: str) -> int | None:
    """``""`` and ``"0"``: the latest (None); otherwise a positive integer."""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > 2**63 - 1:
        raise InvalidArgument(f"version must be a positive integer, got {text!r}")
    return int(text) or None


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
