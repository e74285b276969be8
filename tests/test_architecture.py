"""The pure core imports no network, database, web or clock; only cli.py prints and exits."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "digest"
CORE = ["errors", "models", "config", "parse", "sanitize", "select", "group", "render", "inline", "message", "classify",
        "subscriptions", "tokens", "sign"]
FORBIDDEN_IMPORTS = {"smtplib", "socket", "ssl", "httpx", "urllib.request", "http", "sqlalchemy", "alembic",
                     "starlette", "uvicorn", "apscheduler", "aiosmtpd", "psycopg", "requests", "subprocess"}
FORBIDDEN_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("date", "today"), ("time", "time"), ("time", "monotonic")}


def _tree(name: str) -> ast.Module:
    return ast.parse((PACKAGE / f"{name}.py").read_text(), filename=f"{name}.py")


def _imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_io_library(module: str) -> None:
    imported = _imports(_tree(module))
    bad = {m for m in imported if m in FORBIDDEN_IMPORTS or m.split(".")[0] in FORBIDDEN_IMPORTS}
    assert not bad, f"digest/{module}.py is core but imports {sorted(bad)}"


@pytest.mark.parametrize("module", CORE)
def test_core_module_reads_no_clock(module: str) -> None:
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            assert (node.func.value.id, node.func.attr) not in FORBIDDEN_CALLS, \
                f"digest/{module}.py:{node.lineno} reads the clock; take the time as an argument"


@pytest.mark.parametrize("module", sorted(p.stem for p in PACKAGE.glob("*.py") if not p.stem.startswith("cli") and p.stem != "__main__"))
def test_only_the_cli_prints_or_exits(module: str) -> None:
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            owner = getattr(getattr(node.func, "value", None), "id", "")
            assert name != "print" and not (owner == "sys" and name == "exit") and not (owner == "click" and name == "echo"), \
                f"digest/{module}.py:{node.lineno}: only cli.py prints or exits"


def test_core_modules_say_their_rule_in_the_docstring() -> None:
    for module in CORE[2:]:
        doc = ast.get_docstring(_tree(module)) or ""
        assert "no network" in doc.lower() or "pure" in doc.lower(), f"digest/{module}.py: docstring must state the no-I/O rule"


def test_modules_stay_small() -> None:
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{path.name} has {lines} lines: split it by concern"
