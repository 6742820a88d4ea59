"""The restricted legacy ``.pth`` reader: real file, synthetic files, hostile pickles."""

from __future__ import annotations

import collections
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from kva.tfserving.modelbuild.sources import MOBILENET_V2_WEIGHTS
from kva.tfserving.modelbuild.torch_legacy import (
    PthFormatError,
    UnsafePickleError,
    load_state_dict,
    restricted_loads,
)
from tests.models.legacy_writer import storage, tensor, write_legacy


class _RunsCommand:
    """Unpickling this with a plain ``pickle.load`` would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class _Evaluates:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, ("1 + 1",))


def test_the_real_mobilenet_weights_are_parsed() -> None:
    weights = load_state_dict(MOBILENET_V2_WEIGHTS.locate())
    assert len(weights) == 314
    assert weights["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert weights["features.0.0.weight"].dtype == np.float32
    assert weights["classifier.1.weight"].shape == (1000, 1280)
    assert weights["features.0.1.num_batches_tracked"].dtype == np.int64
    np.testing.assert_allclose(
        weights["features.0.1.running_var"][:3], [0.0701742, 0.1903436, 0.8175785], rtol=1e-5
    )
    assert all(np.isfinite(w).all() for w in weights.values())
    assert all(w.flags.c_contiguous and w.flags.writeable for w in weights.values())


def test_os_system_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_RunsCommand(marker), protocol=2)
    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle global 'posix\.system'"):
        restricted_loads(payload)
    assert not marker.exists()


def test_hostile_state_dict_in_a_legacy_file_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    write_legacy(path, collections.OrderedDict(w=_RunsCommand(marker)), [])
    with pytest.raises(UnsafePickleError, match="posix.system.*only tensor state_dicts"):
        load_state_dict(path)
    assert not marker.exists()


@pytest.mark.parametrize("payload", [_Evaluates(), io.BytesIO, collections.Counter()])
def test_other_globals_are_refused(payload: object) -> None:
    with pytest.raises(UnsafePickleError, match="refusing to unpickle global"):
        restricted_loads(pickle.dumps(payload, protocol=2))


def test_views_offsets_and_strides_are_honoured(tmp_path: Path) -> None:
    shared = storage("0", np.arange(12, dtype=np.float32))
    longs = storage("1", np.array([7], dtype=np.int64))
    state = collections.OrderedDict(
        whole=tensor(shared, 0, (3, 4), (4, 1)),
        transposed=tensor(shared, 0, (4, 3), (1, 4)),
        tail=tensor(shared, 8, (4,), (1,)),
        scalar=tensor(longs, 0, (), ()),
    )
    path = tmp_path / "ok.pth"
    write_legacy(path, state, [shared, longs])
    loaded = load_state_dict(path)
    expected = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(loaded["whole"], expected)
    np.testing.assert_array_equal(loaded["transposed"], expected.T)
    np.testing.assert_array_equal(loaded["tail"], [8, 9, 10, 11])
    assert loaded["scalar"].shape == () and loaded["scalar"] == 7


def _one_tensor_file(tmp_path: Path, **kwargs: object) -> Path:
    store = storage("0", np.arange(6, dtype=np.float32))
    state = collections.OrderedDict(w=tensor(store, 0, (2, 3), (3, 1)))
    path = tmp_path / "w.pth"
    write_legacy(path, state, [store], **kwargs)  # type: ignore[arg-type]
    return path


def test_a_tensor_overrunning_its_storage_is_refused(tmp_path: Path) -> None:
    store = storage("0", np.arange(6, dtype=np.float32))
    path = tmp_path / "overrun.pth"
    write_legacy(path, collections.OrderedDict(w=tensor(store, 4, (2, 3), (3, 1))), [store])
    with pytest.raises(PthFormatError, match="overruns storage 0"):
        load_state_dict(path)


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    path = _one_tensor_file(tmp_path)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(PthFormatError, match="truncated in storage 0"):
        load_state_dict(path)


def test_a_wrong_element_count_is_refused(tmp_path: Path) -> None:
    path = _one_tensor_file(tmp_path, numel_override={"0": 5})
    with pytest.raises(PthFormatError, match="holds 5 elements, not 6"):
        load_state_dict(path)


def test_a_wrong_magic_number_is_refused(tmp_path: Path) -> None:
    path = _one_tensor_file(tmp_path, magic=1234)
    with pytest.raises(PthFormatError, match="bad magic number"):
        load_state_dict(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04rest", "zip-format checkpoint"),
        (b"not a pickle at all", "corrupt pickle"),
        (b"", "corrupt pickle"),
    ],
)
def test_files_that_are_not_legacy_checkpoints(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "x.pth"
    path.write_bytes(content)
    with pytest.raises(PthFormatError, match=message):
        load_state_dict(path)


@pytest.mark.parametrize(
    "payload",
    [
        # GLOBAL torch.FloatStorage; BUILD {"dtype": 1}: would alter the allow-listed object.
        b"\x80\x02ctorch\nFloatStorage\n}X\x05\x00\x00\x00dtypeK\x01sb.",
        # GLOBAL torch._utils._rebuild_tensor_v2; BUILD (None, {"_function": 1}).
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\t\x00\x00\x00_functionK\x01s\x86b.",
        # GLOBAL collections.OrderedDict; BUILD {"x": 1}: would patch the class.
        b"\x80\x02ccollections\nOrderedDict\n}X\x01\x00\x00\x00xK\x01sb.",
    ],
)
def test_allowed_globals_cannot_be_altered(payload: bytes, tmp_path: Path) -> None:
    with pytest.raises(PthFormatError, match="corrupt pickle"):
        restricted_loads(payload)
    assert not hasattr(collections.OrderedDict, "x")
    test_views_offsets_and_strides_are_honoured(tmp_path)  # later loads still work
