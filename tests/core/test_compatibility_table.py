"""The README's compatibility table is the conformance suite's table of contents.

Each row names the tests that ran that client call for real; each named test must
exist, and every test in ``tests/conformance/`` must be named by some row, so the
table cannot claim a call nobody ran, nor leave out one that was.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START, END = "<!-- compatibility-table -->", "<!-- /compatibility-table -->"


def table_rows() -> list[list[str]]:
    readme = (ROOT / "README.md").read_text()
    body = readme[readme.index(START) + len(START) : readme.index(END)]
    lines = [line for line in body.strip().splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def named_tests() -> set[str]:
    return {name for row in table_rows() for name in re.findall(r"`(tests/[^`]+::\w+)`", row[3])}


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_row_has_a_verdict_and_names_tests_that_exist() -> None:
    rows = table_rows()
    assert len(rows) >= 20
    for row in rows:
        assert len(row) == 4, row
        client, call, verdict, tests = row
        assert client and call and verdict, row
        if verdict.startswith("not yet"):
            assert tests == "—", row
            continue
        assert re.findall(r"`(tests/[^`]+::\w+)`", tests), f"no test named on {row}"
    for name in named_tests():
        file, function = name.split("::")
        assert (ROOT / file).is_file(), name
        assert function in defined_tests(ROOT / file), f"{name} does not exist"


def test_every_conformance_test_has_a_row() -> None:
    named = named_tests()
    missing = [
        f"{path.relative_to(ROOT)}::{function}"
        for path in sorted((ROOT / "tests" / "conformance").glob("test_*.py"))
        for function in sorted(defined_tests(path))
        if f"{path.relative_to(ROOT)}::{function}" not in named
    ]
    assert not missing, f"conformance tests without a row in the README's table: {missing}"
