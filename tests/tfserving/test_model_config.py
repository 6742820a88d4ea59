"""The ``model_config_list`` text-format reader and the ``kva serve`` start-up errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kva.launcher.cli import main
from kva.tfserving.model_config import (
    ModelConfigError,
    VersionPolicy,
    load_model_config,
    parse_model_config,
)

FULL = """\
# two models, every feature
model_config_list: {
  config {
    name: 'first'   # single quotes, trailing comment
    base_path: "/models/first"
    model_platform: "tensorflow",
    model_version_policy: { specific { versions: 42 versions: 43 } }
    version_labels { key: 'stable' value: 42 }
    version_labels < key: "canary" value: 43 >
  }
  config { name: "second" base_path: "rel/second" model_version_policy { all {} } };
  config { name: "third" base_path: "/m/third" model_version_policy { latest { num_versions: 2 } } }
}
"""


def test_parse_full_config() -> None:
    first, second, third = parse_model_config(FULL, "f.config", Path("/etc/kva"))
    assert first.name == "first" and first.base_path == Path("/models/first")
    assert first.platform == "tensorflow"
    assert first.policy == VersionPolicy("specific", versions=(42, 43))
    assert first.version_labels == {"stable": 42, "canary": 43}
    assert second.base_path == Path("/etc/kva/rel/second") and second.policy.kind == "all"
    assert second.platform == "openvino" and second.version_labels == {}
    assert third.policy == VersionPolicy("latest", num_versions=2)


def test_version_policies_select() -> None:
    assert VersionPolicy().select([3, 1, 2]) == [3]
    assert VersionPolicy("latest", num_versions=2).select([3, 1, 2]) == [2, 3]
    assert VersionPolicy("all").select([3, 1]) == [1, 3]
    assert VersionPolicy("specific", versions=(1, 7)).select([1, 2, 3]) == [1]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "f.config:1: no model_config_list"),
        ("model_config_list {}", "f.config:1: model_config_list has no config"),
        ("model_config_list {\n config { name: 'a' }\n}", "f.config:2: config is missing 'base_path'"),
        ("model_config_list {\n config {\n  name: 'a' base_path: '/a'\n  colour: 'red'\n }\n}",
         "f.config:4: unknown field 'colour' in config"),
        ("model_config_list {\n config { name: 'a' name: 'b' base_path: '/a' }\n}",
         "f.config:2: config.name given twice"),
        ("model_config_list { config { name: a base_path: '/a' } }",
         "f.config:1: config.name must be a quoted string"),
        ("model_config_list {\n config { name: 'a'\n base_path: '/a'\n",
         "f.config:4: expected '}', found end of file"),
        ("model_config_list { config { name: 'a\n' base_path: '/a' } }",
         "f.config:1: unexpected character"),
        ("model_config_list { config { name: 'a/b' base_path: '/a' } }",
         "may use only letters, digits"),
        ("model_config_list { config { name: 'a' base_path: '/a' model_platform: 'pytorch' } }",
         "model_platform must be one of"),
        ("model_config_list {\n config { name: 'a' base_path: '/a'\n"
         "  model_version_policy { latest {} all {} } } }",
         "f.config:3: model_version_policy needs exactly one of"),
        ("model_config_list { config { name: 'a' base_path: '/a'"
         " model_version_policy { specific { versions: -3 } } } }",
         "specific.versions must be positive"),
        ("model_config_list { config { name: 'a' base_path: '/a'"
         " model_version_policy { specific { versions: 'x' } } } }",
         "specific.versions must be an integer"),
        ("model_config_list { config { name: 'a' base_path: '/a'"
         " version_labels { key: 'k' } } }", "needs both key and value"),
        ("model_config_list {\n config { name: 'a' base_path: '/a' }\n"
         " config { name: 'a' base_path: '/b' }\n}", "f.config:3: model name 'a' configured twice"),
        ("model_config_list { config { name: 'a' base_path: '/a' } } }",
         "expected a field name, found '}'"),
        ("model_config_list { config { name: 'a' base_path: '/a' model_version_policy: 5 } }",
         "must be a { ... } block"),
        ("model_config_list { config { name: 'a' base_path: [1] } }", "list syntax"),
    ],
)  # fmt: skip
def test_errors_name_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ModelConfigError) as caught:
        parse_model_config(text, "f.config")
    assert message in str(caught.value)


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ModelConfigError, match="cannot read model config file"):
        load_model_config(tmp_path / "missing.config")


def _serve(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as caught:
        code = main(["serve", *args])
        raise SystemExit(code)
    return int(caught.value.code or 0), capsys.readouterr().err


def test_cli_needs_exactly_one_model_source(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _serve(capsys)
    assert code == 2 and "exactly one of --model_base_path or --model_config_file" in err
    code, err = _serve(capsys, "--model_base_path", "/a", "--model_config_file", "/b")
    assert code == 2 and "exactly one of" in err


def test_cli_bad_config_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "m.config"
    config.write_text("model_config_list {\n  config { name: 'x' base_path: 'y' oops: 1 }\n}\n")
    code, err = _serve(capsys, "--model_config_file", str(config))
    assert code == 2 and f"{config}:2: unknown field 'oops' in config" in err


def test_cli_missing_base_path(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = _serve(capsys, "--model_base_path", str(tmp_path / "nope"))
    assert code == 2 and f"base path {tmp_path / 'nope'} is not a folder" in err


def test_cli_unknown_device(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = _serve(capsys, "--model_base_path", str(tmp_path), "--device", "TPU")
    assert code == 2 and "--device TPU: not available here" in err


def test_cli_bad_flag_value(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = _serve(capsys, "--model_base_path", str(tmp_path), "--max_inflight", "0")
    assert code == 2
    assert (
        "--max_inflight / KVA_SERVE_MAX_INFLIGHT: Input should be greater than or equal to 1" in err
    )


_tokens = st.sampled_from(
    ["model_config_list", "config", "name", "base_path", "model_version_policy", "specific",
     "versions", "latest", "all", "version_labels", "key", "value", "{", "}", "<", ">", ":",
     ",", ";", "'a'", '"/b"', "3", "-1", "0x1f", "1.5", "\n", "#c\n", "[", "'", "\\"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.lists(_tokens, max_size=40).map(" ".join) | st.text(max_size=60))
def test_any_text_parses_or_fails_with_a_located_error(text: str) -> None:
    try:
        configs = parse_model_config(text, "f.config")
    except ModelConfigError as exc:
        assert str(exc).startswith("f.config:")
    else:
        assert configs and all(c.name and c.base_path for c in configs)
