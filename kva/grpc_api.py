"""TF Serving's gRPC API (``tensorflow-serving-api``), loaded lazily, and TensorProto <-> numpy.

The ``[grpc]`` extra is optional: nothing here is imported by a REST-only
install. :func:`load` imports the generated protobuf and gRPC modules or
raises :class:`GrpcNotInstalled` with the pip command that fixes it.

The protos of ``tensorflow-serving-api`` live inside the ``tensorflow``
package, whose ``__init__`` starts the whole TensorFlow runtime (~13 s and
~600 MB here) although only the plain ``*_pb2`` modules are needed. Unless
TensorFlow is already imported, :func:`load` registers ``tensorflow`` as a
bare package while it imports them, so that ``tensorflow.core.framework.tensor_pb2``
and friends load on their own (~1 s, ~35 MB), then unregisters it: a later
``import tensorflow`` still runs the real one (reusing those proto modules).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from kva import dtypes

INSTALL_HINT = 'install kafka-video-analytics[grpc] (pip install "kafka-video-analytics[grpc]")'
#: Largest gRPC message the client accepts (a predict answer is a few kB).
MAX_CLIENT_MESSAGE_BYTES = 16 * 1024 * 1024
_lock = threading.Lock()
_loaded: Api | None = None


class GrpcNotInstalled(RuntimeError):
    """The ``[grpc]`` extra (grpcio + tensorflow-serving-api) is not installed."""


class TensorError(ValueError):
    """A TensorProto that cannot be turned into an array (bad dtype, shape or values)."""


@dataclass(frozen=True)
class Api:
    """The loaded modules: ``grpc`` and the TF Serving protos and stubs."""

    grpc: Any
    tensor_pb2: Any
    types_pb2: Any
    tensor_shape_pb2: Any
    meta_graph_pb2: Any
    model_pb2: Any
    predict_pb2: Any
    get_model_metadata_pb2: Any
    get_model_status_pb2: Any
    classification_pb2: Any
    regression_pb2: Any
    inference_pb2: Any
    prediction_service_pb2_grpc: Any
    model_service_pb2_grpc: Any


def installed(*modules: str) -> bool:
    """True when every one of ``modules`` can be imported (checked without importing it)."""
    for name in modules:
        try:
            if importlib.util.find_spec(name) is None:
                return False
        except (ImportError, ValueError):  # a parent missing, or blocked in sys.modules
            return False
    return True


def available() -> bool:
    """True when the ``[grpc]`` extra is installed (checked without importing it)."""
    return installed("grpc", "tensorflow_serving", "google.protobuf")


def load() -> Api:
    """Import grpcio and the TF Serving API once.

    Raises:
        GrpcNotInstalled: the ``[grpc]`` extra is missing.
    """
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _import()
        return _loaded


def _import() -> Api:
    if not available():
        raise GrpcNotInstalled(f"gRPC support is not installed: {INSTALL_HINT}")
    stub = _protos_without_tensorflow_runtime()
    try:
        grpc = importlib.import_module("grpc")
        modules = {
            name: importlib.import_module(f"{package}.{name}")
            for package, name in (
                ("tensorflow.core.framework", "tensor_pb2"),
                ("tensorflow.core.framework", "types_pb2"),
                ("tensorflow.core.framework", "tensor_shape_pb2"),
                ("tensorflow.core.protobuf", "meta_graph_pb2"),
                ("tensorflow_serving.apis", "model_pb2"),
                ("tensorflow_serving.apis", "predict_pb2"),
                ("tensorflow_serving.apis", "get_model_metadata_pb2"),
                ("tensorflow_serving.apis", "get_model_status_pb2"),
                ("tensorflow_serving.apis", "classification_pb2"),
                ("tensorflow_serving.apis", "regression_pb2"),
                ("tensorflow_serving.apis", "inference_pb2"),
                ("tensorflow_serving.apis", "prediction_service_pb2_grpc"),
                ("tensorflow_serving.apis", "model_service_pb2_grpc"),
            )
        }
    except ImportError as exc:
        raise GrpcNotInstalled(f"gRPC support is broken ({exc}): {INSTALL_HINT}") from None
    finally:
        if stub is not None and sys.modules.get("tensorflow") is stub:
            del sys.modules["tensorflow"]  # a later ``import tensorflow`` gets the real one
    return Api(grpc=grpc, **modules)


def _protos_without_tensorflow_runtime() -> types.ModuleType | None:
    """Register a bare ``tensorflow`` package (its ``__init__`` not run); None if not needed."""
    if "tensorflow" in sys.modules:
        return None
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return None  # let the imports fail with their own message
    package = types.ModuleType("tensorflow")
    package.__path__ = list(spec.submodule_search_locations)
    package.__doc__ = "TensorFlow's package folder, loaded for its protobuf modules only (kva)"
    sys.modules["tensorflow"] = package
    return package


# -- TensorProto <-> numpy -------------------------------------------------------------------
def dtype_enum(api: Api, dtype: np.dtype) -> int:
    """The ``tensorflow.DataType`` value of a numpy dtype (``DT_INVALID`` when unknown)."""
    value: int = api.types_pb2.DataType.Value(dtypes.tf_name(dtype))
    return value


def dtype_name(api: Api, value: int) -> str:
    """``DT_FLOAT`` for 1 and so on."""
    try:
        name: str = api.types_pb2.DataType.Name(value)
    except ValueError:
        return f"DataType {value}"
    return name


def make_tensor_proto(api: Api, array: np.ndarray) -> Any:
    """A TensorProto of ``array``: numbers as raw ``tensor_content``, strings in ``string_val``."""
    array = np.asarray(array)
    proto = api.tensor_pb2.TensorProto(dtype=dtype_enum(api, array.dtype))
    for size in array.shape:
        proto.tensor_shape.dim.add(size=int(size))
    if array.dtype == np.dtype(object):
        proto.string_val.extend(
            item if isinstance(item, bytes) else str(item).encode() for item in array.flat
        )
    else:
        proto.tensor_content = np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes()
    return proto


def shape_of(proto: Any) -> tuple[int, ...]:
    """The tensor's dimensions (``TensorError`` for unknown rank or negative sizes)."""
    if proto.tensor_shape.unknown_rank:
        raise TensorError("tensor_shape has unknown rank")
    shape = tuple(int(d.size) for d in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise TensorError(f"tensor_shape {list(shape)} has a negative dimension")
    return shape


def make_ndarray(api: Api, proto: Any, max_elements: int = 1 << 28) -> np.ndarray:
    """The array a TensorProto holds (``tensor_content`` or the typed ``*_val`` field).

    A single value in the ``*_val`` field fills the whole shape, as in TensorFlow.

    Raises:
        TensorError: unsupported dtype, or the values do not fill the shape.
    """
    name = dtype_name(api, proto.dtype)
    found = dtypes.of_tf(name)
    if found is None:
        raise TensorError(f"unsupported dtype {name}")
    dtype, field = found.numpy, found.proto_field
    shape = shape_of(proto)
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count > max_elements:
        raise TensorError(f"tensor of {count} elements is too large")
    if proto.tensor_content:
        if dtype == np.dtype(object):
            raise TensorError("DT_STRING tensors must use string_val, not tensor_content")
        if len(proto.tensor_content) != count * dtype.itemsize:
            raise TensorError(
                f"tensor_content holds {len(proto.tensor_content)} bytes; shape {list(shape)} "
                f"of {name} needs {count * dtype.itemsize}"
            )
        little = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        return little.astype(dtype).reshape(shape)
    values = getattr(proto, field)
    if field == "half_val":
        flat = np.array(values, dtype=np.uint16).view(np.float16)
    elif dtype == np.dtype(object):
        flat = np.empty(len(values), dtype=object)
        flat[:] = list(values)
    else:
        try:
            flat = np.array(values, dtype=dtype)
        except OverflowError:
            raise TensorError(f"a value of {field} is out of range for {name}") from None
    if len(flat) == count:
        return flat.reshape(shape)
    if len(flat) == 1:
        return np.full(shape, flat[0], dtype=dtype)
    raise TensorError(f"{field} holds {len(flat)} values; shape {list(shape)} needs {count}")


# -- replica URLs ----------------------------------------------------------------------------
@dataclass(frozen=True)
class GrpcTarget:
    """A ``grpc://host:port/<model>[/versions/<n>]`` replica URL, parsed."""

    target: str
    model: str
    version: int | None


def parse_grpc_url(url: str, scheme: str = "grpc") -> GrpcTarget:
    """Parse and check a gRPC replica URL (does not need the ``[grpc]`` extra).

    Args:
        url: ``<scheme>://host:port/<model>[/versions/<n>]``.
        scheme: ``grpc`` (TF Serving's API) or ``kserve+grpc`` (KServe v2's).

    Raises:
        ValueError: with the reason.
    """
    form = f"{scheme}://host:port/<model>"
    parts = urlsplit(url)
    if parts.scheme != scheme or not parts.hostname:
        raise ValueError(f"{url!r}: a gRPC replica URL is {form}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: bad port") from None
    if port is None:
        raise ValueError(
            f"{url!r}: give the gRPC port ({scheme}://host:8500/m: TF Serving's and kva's usual "
            "port is 8500, Triton's 8001)"
        )
    segments = [s for s in parts.path.split("/") if s]
    if (
        len(segments) not in (1, 3)
        or (len(segments) == 3 and segments[1] != "versions")
        or parts.query
        or parts.fragment
    ):
        raise ValueError(f"{url!r}: a gRPC replica URL is {form} (optionally /versions/<n>)")
    version = None
    if len(segments) == 3:
        if not segments[2].isdigit() or int(segments[2]) <= 0:
            raise ValueError(f"{url!r}: expected .../versions/<positive integer>")
        version = int(segments[2])
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return GrpcTarget(f"{host}:{port}", segments[0], version)


def check_grpc_url(url: str) -> None:
    """Check a ``grpc://`` replica URL and that the ``[grpc]`` extra is installed.

    Raises:
        ValueError: with the reason (a settings error for the user).
    """
    parse_grpc_url(url)
    if not available():
        raise ValueError(f"{url!r}: gRPC replicas need the [grpc] extra: {INSTALL_HINT}")
