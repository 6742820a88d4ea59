"""Write small PyTorch legacy-format files without torch, for the reader's tests.

``pickle`` resolves globals by importing them, so the writer installs stand-in
``torch`` / ``torch._utils`` modules in ``sys.modules`` while pickling.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

_STORAGE_NAMES = {"float32": "FloatStorage", "int64": "LongStorage", "float64": "DoubleStorage"}


class _Storage:
    def __init__(self, key: str, array: np.ndarray) -> None:
        self.key = key
        self.array = np.ascontiguousarray(array).ravel()


class _Tensor:
    def __init__(
        self, storage: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ):
        self.args = (storage, offset, size, stride, False, collections.OrderedDict())

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (sys.modules["torch._utils"]._rebuild_tensor_v2, self.args)


@contextmanager
def _fake_torch() -> Iterator[types.ModuleType]:
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")
    for name in _STORAGE_NAMES.values():
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args: object) -> None:
        raise AssertionError("never called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def write_legacy(
    path: Path,
    obj: object,
    storages: list[_Storage],
    *,
    magic: int = 0x1950A86A20F9469CFC6C,
    numel_override: dict[str, int] | None = None,
) -> None:
    """Write ``obj`` (containing :func:`tensor` values) in the legacy format."""
    out = io.BytesIO()
    with _fake_torch() as torch:
        for header in (magic, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, out, protocol=2)

        class _Pickler(pickle.Pickler):
            def persistent_id(self, value: object) -> object:
                if isinstance(value, _Storage):
                    kind = getattr(torch, _STORAGE_NAMES[str(value.array.dtype)])
                    return ("storage", kind, value.key, "cpu", value.array.size, None)
                return None

        _Pickler(out, protocol=2).dump(obj)
        pickle.dump([s.key for s in storages], out, protocol=2)
    for storage in storages:
        numel = (numel_override or {}).get(storage.key, storage.array.size)
        out.write(struct.pack("<q", numel))
        out.write(storage.array.astype(storage.array.dtype.newbyteorder("<")).tobytes())
    path.write_bytes(out.getvalue())


def storage(key: str, array: np.ndarray) -> _Storage:
    """A storage holding ``array``'s elements."""
    return _Storage(key, array)


def tensor(store: _Storage, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> _Tensor:
    """A tensor view of ``store``."""
    return _Tensor(store, offset, size, stride)
