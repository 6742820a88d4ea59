"""Read a PyTorch *legacy* (non-zip) ``.pth`` state_dict without torch, safely.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``)
is five records in a row:

1. a pickled magic number (``0x1950a86a20f9469cfc6c``),
2. a pickled protocol version (``1001``),
3. a pickled ``sys_info`` dict (``little_endian``, ``type_sizes``, ...),
4. the pickled object; tensors are ``torch._utils._rebuild_tensor_v2(storage, ...)``
   calls whose storages are *persistent ids* ``("storage", StorageType, key,
   location, numel, view_metadata)``,
5. a pickled list of storage keys, then for each key an int64 element count
   followed by the storage's raw bytes.

Every pickle is read with :class:`RestrictedUnpickler`, which resolves only the
handful of globals a tensor state_dict needs (mapped to local, inert
constructors) and refuses anything else, as ``torch.load(weights_only=True)``
does. Nothing from the file is ever called except those constructors.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
#: Refuse files larger than this (a state_dict of a mobile network is ~15 MB).
MAX_FILE_BYTES = 1 << 30


class PthFormatError(ValueError):
    """The file is not a well-formed legacy PyTorch state_dict."""


class UnsafePickleError(PthFormatError):
    """The pickle asks for a global outside the allow-list (it could run code)."""


class _ReadOnly:
    """Objects handed to the unpickler: no ``__dict__``, no ``__setstate__``, no setattr.

    A hostile pickle can apply BUILD to any object it can name; these refuse it,
    so the allow-listed globals cannot be altered for later loads.
    """

    __slots__ = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")


class StorageType(_ReadOnly):
    """Stand-in for ``torch.<Type>Storage``: only remembers the element dtype."""

    __slots__ = ("dtype", "name")
    name: str
    dtype: np.dtype[Any]

    def __init__(self, name: str, dtype: np.dtype[Any]) -> None:
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", dtype)

    def __repr__(self) -> str:
        return f"StorageType({self.name})"


class _Constructor(_ReadOnly):
    """A read-only wrapper around one of this module's safe rebuild functions."""

    __slots__ = ("_function",)
    _function: Callable[..., TensorRef]

    def __init__(self, function: Callable[..., TensorRef]) -> None:
        object.__setattr__(self, "_function", function)

    def __call__(self, *args: object) -> TensorRef:
        return self._function(*args)


_STORAGE_TYPES = {
    name: StorageType(name, np.dtype(code))
    for name, code in {
        "DoubleStorage": "f8",
        "FloatStorage": "f4",
        "HalfStorage": "f2",
        "LongStorage": "i8",
        "IntStorage": "i4",
        "ShortStorage": "i2",
        "CharStorage": "i1",
        "ByteStorage": "u1",
        "BoolStorage": "?",
    }.items()
}


@dataclass(frozen=True)
class StorageRef:
    """A storage announced by a persistent id; its bytes come at the end of the file."""

    key: str
    storage_type: StorageType
    numel: int


@dataclass(frozen=True)
class TensorRef:
    """A tensor view into a storage, materialised once the storages are read."""

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: object,
    storage_offset: object,
    size: object,
    stride: object,
    requires_grad: object = False,
    backward_hooks: object = None,
    metadata: object = None,
) -> TensorRef:
    """Safe stand-in for ``torch._utils._rebuild_tensor_v2``: validates and records."""
    if not isinstance(storage, StorageRef):
        raise PthFormatError("tensor without a storage persistent id")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise PthFormatError(f"bad storage offset {storage_offset!r}")
    dims = _int_tuple(size, "size")
    steps = _int_tuple(stride, "stride")
    if len(dims) != len(steps) or any(d < 0 for d in dims) or any(s < 0 for s in steps):
        raise PthFormatError(f"bad tensor geometry size={dims} stride={steps}")
    if all(dims):
        last = storage_offset + sum((d - 1) * s for d, s in zip(dims, steps, strict=True))
        if last >= storage.numel:
            raise PthFormatError(
                f"tensor {dims} at offset {storage_offset} overruns storage {storage.key} "
                f"of {storage.numel} elements"
            )
    return TensorRef(storage, storage_offset, dims, steps)


def _rebuild_tensor(
    storage: object, storage_offset: object, size: object, stride: object
) -> TensorRef:
    """Safe stand-in for the older ``torch._utils._rebuild_tensor``."""
    return _rebuild_tensor_v2(storage, storage_offset, size, stride)


def _int_tuple(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(isinstance(v, int) for v in value):
        raise PthFormatError(f"tensor {what} is not a tuple of ints: {value!r}")
    return value


#: The only globals a pickle may name, each mapped to a local safe object.
ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _Constructor(_rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor"): _Constructor(_rebuild_tensor),
    **{("torch", name): storage_type for name, storage_type in _STORAGE_TYPES.items()},
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS` and storage persistent ids.

    Args:
        file: the binary stream positioned at a pickle.
        storages: collects the storages announced by persistent ids, by key.
    """

    def __init__(self, file: IO[bytes], storages: dict[str, StorageRef] | None = None) -> None:
        super().__init__(file)
        self.storages: dict[str, StorageRef] = {} if storages is None else storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing to unpickle global '{module}.{name}': only tensor state_dicts "
                "are accepted (allowed: "
                + ", ".join(sorted(f"{m}.{n}" for m, n in ALLOWED_GLOBALS))
                + ")"
            ) from None

    def persistent_load(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise PthFormatError(f"unsupported persistent id {pid!r:.100}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, StorageType):
            raise PthFormatError(f"persistent id names no storage type: {storage_type!r:.100}")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise PthFormatError(f"bad storage persistent id {pid!r:.100}")
        if view_metadata is not None:
            raise PthFormatError("storage views (pre-0.4 PyTorch files) are not supported")
        known = self.storages.get(key)
        if known is not None:
            if known.storage_type != storage_type or known.numel != numel:
                raise PthFormatError(f"storage {key} announced twice with different types")
            return known
        ref = StorageRef(key, storage_type, numel)
        self.storages[key] = ref
        return ref


def restricted_loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler` (for plain values)."""
    return _load_one(io.BytesIO(data), {})


def _load_one(stream: BinaryIO, storages: dict[str, StorageRef]) -> Any:
    try:
        return RestrictedUnpickler(stream, storages).load()
    except PthFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise PthFormatError(f"corrupt pickle: {exc}") from exc


def load_state_dict(path: Path) -> dict[str, np.ndarray]:
    """Read a legacy-format PyTorch state_dict into numpy arrays (copies, C-contiguous).

    Raises:
        PthFormatError: the file is not a legacy-format tensor state_dict
            (:class:`UnsafePickleError` if it names a global outside the allow-list).
    """
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise PthFormatError(f"{path}: {size} bytes is larger than the {MAX_FILE_BYTES} limit")
    with path.open("rb") as stream:
        head = stream.read(4)
        if head[:2] == b"PK":
            raise PthFormatError(f"{path}: a zip-format checkpoint; only the legacy format is read")
        stream.seek(0)
        return _read_legacy(stream, size, str(path))


def _read_legacy(stream: BinaryIO, size: int, where: str) -> dict[str, np.ndarray]:
    storages: dict[str, StorageRef] = {}
    if _load_one(stream, storages) != MAGIC_NUMBER:
        raise PthFormatError(f"{where}: not a legacy PyTorch file (bad magic number)")
    if _load_one(stream, storages) != PROTOCOL_VERSION:
        raise PthFormatError(f"{where}: unsupported PyTorch protocol version")
    sys_info = _load_one(stream, storages)
    if not isinstance(sys_info, dict):
        raise PthFormatError(f"{where}: bad sys_info record")
    byteorder: Literal["<", ">"] = "<" if sys_info.get("little_endian", True) else ">"
    obj = _load_one(stream, storages)
    keys = _load_one(stream, storages)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise PthFormatError(f"{where}: bad storage key list")
    data = _read_storages(stream, keys, storages, byteorder, size, where)
    return _materialise(obj, data, where)


def _read_storages(
    stream: BinaryIO,
    keys: list[str],
    storages: dict[str, StorageRef],
    byteorder: Literal["<", ">"],
    size: int,
    where: str,
) -> dict[str, np.ndarray]:
    data: dict[str, np.ndarray] = {}
    for key in keys:
        ref = storages.get(key)
        if ref is None:
            raise PthFormatError(f"{where}: storage {key} has data but no tensor")
        header = stream.read(8)
        if len(header) != 8:
            raise PthFormatError(f"{where}: truncated before storage {key}")
        (numel,) = struct.unpack(byteorder + "q", header)
        if numel != ref.numel:
            raise PthFormatError(f"{where}: storage {key} holds {numel} elements, not {ref.numel}")
        dtype = ref.storage_type.dtype.newbyteorder(byteorder)
        nbytes = numel * dtype.itemsize
        if stream.tell() + nbytes > size:
            raise PthFormatError(f"{where}: truncated in storage {key}")
        data[key] = np.frombuffer(stream.read(nbytes), dtype=dtype)
    missing = set(storages) - set(data)
    if missing:
        raise PthFormatError(f"{where}: no data for storages {sorted(missing)[:5]}")
    return data


def _materialise(obj: object, data: dict[str, np.ndarray], where: str) -> dict[str, np.ndarray]:
    if not isinstance(obj, dict):
        raise PthFormatError(f"{where}: the pickled object is a {type(obj).__name__}, not a dict")
    tensors: dict[str, np.ndarray] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, TensorRef):
            raise PthFormatError(f"{where}: entry {name!r:.60} is not a tensor")
        flat = data[value.storage.key]
        itemsize = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[value.offset :],
            shape=value.size,
            strides=tuple(s * itemsize for s in value.stride),
            writeable=False,
        )
        tensors[name] = np.array(view, dtype=flat.dtype.newbyteorder("="), order="C")
    return tensors
