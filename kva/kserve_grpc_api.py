"""KServe v2 gRPC (``inference.GRPCInferenceService``), described here, loaded lazily.

The Open Inference Protocol's gRPC messages (KServe's ``grpc_predict_v2.proto``,
which Triton's ``grpc_service.proto`` extends with ``ModelConfig``,
``ModelStatistics`` and ``RepositoryIndex``) are built at import of :func:`load`
as a ``FileDescriptorProto`` from the table below, in a private descriptor pool:
no protoc, no generated modules, and no clash with a client's own ``inference.*``
messages in the same process (tritonclient registers them in the default pool).

Only the fields that kva reads or answers are declared: a message on the wire
with more fields still parses (unknown fields are kept), and the numbers and
names here are those of the published protos, which real clients rely on.
The ``[grpc]`` extra (grpcio, protobuf) is needed; nothing else of it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from kva.grpc_api import INSTALL_HINT, GrpcNotInstalled, installed

PACKAGE = "inference"
SERVICE = f"{PACKAGE}.GRPCInferenceService"

#: message -> its fields, ``number name type`` separated by ``;``. A type in capitals is a
#: message (or the enum ``DataType``) of this package; ``*`` before it: repeated;
#: ``map<V>``: ``map<string, V>``; ``|name`` after it: a member of oneof ``name``.
#: Nested messages are written ``Outer.Inner``.
_MESSAGES: dict[str, str] = {
    "ServerLiveRequest": "",
    "ServerLiveResponse": "1 live bool",
    "ServerReadyRequest": "",
    "ServerReadyResponse": "1 ready bool",
    "ModelReadyRequest": "1 name string; 2 version string",
    "ModelReadyResponse": "1 ready bool",
    "ServerMetadataRequest": "",
    "ServerMetadataResponse": "1 name string; 2 version string; 3 extensions *string",
    "ModelMetadataRequest": "1 name string; 2 version string",
    "ModelMetadataResponse": "1 name string; 2 versions *string; 3 platform string; "
    "4 inputs *ModelMetadataResponse.TensorMetadata; "
    "5 outputs *ModelMetadataResponse.TensorMetadata",
    "ModelMetadataResponse.TensorMetadata": "1 name string; 2 datatype string; 3 shape *int64",
    "InferParameter": "1 bool_param bool|parameter_choice; 2 int64_param int64|parameter_choice; "
    "3 string_param string|parameter_choice; 4 double_param double|parameter_choice; "
    "5 uint64_param uint64|parameter_choice",
    "InferTensorContents": "1 bool_contents *bool; 2 int_contents *int32; "
    "3 int64_contents *int64; 4 uint_contents *uint32; 5 uint64_contents *uint64; "
    "6 fp32_contents *float; 7 fp64_contents *double; 8 bytes_contents *bytes",
    "ModelInferRequest": "1 model_name string; 2 model_version string; 3 id string; "
    "4 parameters map<InferParameter>; 5 inputs *ModelInferRequest.InferInputTensor; "
    "6 outputs *ModelInferRequest.InferRequestedOutputTensor; 7 raw_input_contents *bytes",
    "ModelInferRequest.InferInputTensor": "1 name string; 2 datatype string; 3 shape *int64; "
    "4 parameters map<InferParameter>; 5 contents InferTensorContents",
    "ModelInferRequest.InferRequestedOutputTensor": "1 name string; "
    "2 parameters map<InferParameter>",
    "ModelInferResponse": "1 model_name string; 2 model_version string; 3 id string; "
    "4 parameters map<InferParameter>; 5 outputs *ModelInferResponse.InferOutputTensor; "
    "6 raw_output_contents *bytes",
    "ModelInferResponse.InferOutputTensor": "1 name string; 2 datatype string; "
    "3 shape *int64; 4 parameters map<InferParameter>; 5 contents InferTensorContents",
    # Triton's extensions (model_config.proto and grpc_service.proto)
    "ModelConfigRequest": "1 name string; 2 version string",
    "ModelConfigResponse": "1 config ModelConfig",
    "ModelConfig": "1 name string; 2 platform string; 3 version_policy ModelVersionPolicy; "
    "4 max_batch_size int32; 5 input *ModelInput; 6 output *ModelOutput; 17 backend string",
    "ModelInput": "1 name string; 2 data_type DataType; 4 dims *int64",
    "ModelOutput": "1 name string; 2 data_type DataType; 3 dims *int64",
    "ModelVersionPolicy": "1 latest ModelVersionPolicy.Latest|policy_choice; "
    "2 all ModelVersionPolicy.All|policy_choice; "
    "3 specific ModelVersionPolicy.Specific|policy_choice",
    "ModelVersionPolicy.Latest": "1 num_versions uint32",
    "ModelVersionPolicy.All": "",
    "ModelVersionPolicy.Specific": "1 versions *int64",
    "ModelStatisticsRequest": "1 name string; 2 version string",
    "ModelStatisticsResponse": "1 model_stats *ModelStatistics",
    "StatisticDuration": "1 count uint64; 2 ns uint64",
    "InferStatistics": "1 success StatisticDuration; 2 fail StatisticDuration; "
    "3 queue StatisticDuration; 4 compute_input StatisticDuration; "
    "5 compute_infer StatisticDuration; 6 compute_output StatisticDuration; "
    "7 cache_hit StatisticDuration; 8 cache_miss StatisticDuration",
    "ModelStatistics": "1 name string; 2 version string; 3 last_inference uint64; "
    "4 inference_count uint64; 5 execution_count uint64; 6 inference_stats InferStatistics",
    "RepositoryIndexRequest": "1 repository_name string; 2 ready bool",
    "RepositoryIndexResponse": "1 models *RepositoryIndexResponse.ModelIndex",
    "RepositoryIndexResponse.ModelIndex": "1 name string; 2 version string; 3 state string; "
    "4 reason string",
}

#: Triton's ``inference.DataType`` (model configuration), value by name.
_TRITON_TYPES = ("INVALID", "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16",
                 "INT32", "INT64", "FP16", "FP32", "FP64", "STRING", "BF16")  # fmt: skip
DATA_TYPES = {f"TYPE_{name}": number for number, name in enumerate(_TRITON_TYPES)}

#: rpc -> (request, response) messages; all unary.
METHODS = {
    "ServerLive": ("ServerLiveRequest", "ServerLiveResponse"),
    "ServerReady": ("ServerReadyRequest", "ServerReadyResponse"),
    "ModelReady": ("ModelReadyRequest", "ModelReadyResponse"),
    "ServerMetadata": ("ServerMetadataRequest", "ServerMetadataResponse"),
    "ModelMetadata": ("ModelMetadataRequest", "ModelMetadataResponse"),
    "ModelInfer": ("ModelInferRequest", "ModelInferResponse"),
    "ModelConfig": ("ModelConfigRequest", "ModelConfigResponse"),
    "ModelStatistics": ("ModelStatisticsRequest", "ModelStatisticsResponse"),
    "RepositoryIndex": ("RepositoryIndexRequest", "RepositoryIndexResponse"),
}

#: KServe v2 datatype -> the ``InferTensorContents`` field that holds its values.
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

_SCALARS = ("bool", "bytes", "double", "float", "int32", "int64", "string", "uint32", "uint64")
_lock = threading.Lock()
_loaded: KServeApi | None = None


@dataclass(frozen=True)
class KServeApi:
    """grpcio and the message classes, by short name (``ModelInferRequest``, ...)."""

    grpc: Any
    messages: dict[str, Any]

    def message(self, name: str) -> Any:
        """The class of message ``name`` (nested ones as ``Outer.Inner``)."""
        return self.messages[name]


def available() -> bool:
    """True when grpcio and protobuf are installed (checked without importing them).

    Unlike TF Serving's API (:func:`kva.grpc_api.available`), no ``tensorflow-serving-api``.
    """
    return installed("grpc", "google.protobuf")


def load() -> KServeApi:
    """Build the messages once (grpcio and protobuf imported then).

    Raises:
        GrpcNotInstalled: grpcio or protobuf is missing.
    """
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _build()
        return _loaded


def _build() -> KServeApi:
    try:
        import grpc
        from google.protobuf import descriptor_pool, message_factory
    except ImportError as exc:
        raise GrpcNotInstalled(f"gRPC support is not installed ({exc}): {INSTALL_HINT}") from None
    pool = descriptor_pool.DescriptorPool()
    classes = message_factory.GetMessages([file_descriptor()], pool=pool)
    prefix = f"{PACKAGE}."
    messages = {name.removeprefix(prefix): cls for name, cls in classes.items()}
    return KServeApi(grpc=grpc, messages=messages)


def file_descriptor() -> Any:
    """The ``FileDescriptorProto`` of :data:`_MESSAGES` (package ``inference``)."""
    from google.protobuf import descriptor_pb2

    proto = descriptor_pb2.FileDescriptorProto(
        name="kva/kserve_grpc_predict_v2.proto", package=PACKAGE, syntax="proto3"
    )
    enum = proto.enum_type.add(name="DataType")
    for name, number in DATA_TYPES.items():
        enum.value.add(name=name, number=number)
    made: dict[str, Any] = {}
    for name in sorted(_MESSAGES, key=lambda n: n.count(".")):  # parents before nested ones
        outer, _, short = name.rpartition(".")
        parent = made[outer].nested_type if outer else proto.message_type
        message = made[name] = parent.add(name=short)
        for spec in filter(None, (s.strip() for s in _MESSAGES[name].split(";"))):
            _add_field(message, spec, f".{PACKAGE}.{name}")
    service = proto.service.add(name=SERVICE.rpartition(".")[2])
    for method, (request, response) in METHODS.items():
        service.method.add(
            name=method, input_type=f".{PACKAGE}.{request}", output_type=f".{PACKAGE}.{response}"
        )
    return proto


def _add_field(message: Any, spec: str, full_name: str) -> None:
    """Add one field written ``number name type`` to the ``DescriptorProto`` ``full_name``."""
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto, OneofDescriptorProto

    number, name, kind = spec.split()
    kind, _, oneof = kind.partition("|")
    field = message.field.add(name=name, number=int(number), json_name=_camel(name))
    field.label = FieldDescriptorProto.LABEL_OPTIONAL
    if kind.startswith("*"):
        field.label, kind = FieldDescriptorProto.LABEL_REPEATED, kind[1:]
    if kind.startswith("map<"):
        entry_name = _camel(name, upper=True) + "Entry"
        entry = message.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry_full = f"{full_name}.{entry_name}"
        _add_field(entry, "1 key string", entry_full)
        _add_field(entry, f"2 value {kind[4:-1]}", entry_full)
        field.label = FieldDescriptorProto.LABEL_REPEATED
        field.type = FieldDescriptorProto.TYPE_MESSAGE
        field.type_name = f"{full_name}.{entry_name}"
    elif kind in _SCALARS:
        field.type = FieldDescriptorProto.Type.Value(f"TYPE_{kind.upper()}")
    else:
        enum = kind == "DataType"
        field.type = FieldDescriptorProto.TYPE_ENUM if enum else FieldDescriptorProto.TYPE_MESSAGE
        field.type_name = f".{PACKAGE}.{kind}"
    if oneof:
        names = [o.name for o in message.oneof_decl]
        if oneof not in names:
            message.oneof_decl.append(OneofDescriptorProto(name=oneof))
            names.append(oneof)
        field.oneof_index = names.index(oneof)


def _camel(name: str, upper: bool = False) -> str:
    head, *rest = name.split("_")
    text = head + "".join(part.title() for part in rest)
    return text[:1].upper() + text[1:] if upper else text
