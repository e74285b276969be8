"""The layout is the architecture: what each folder of digest/ may import, directly or
through another module; the pure core does no I/O and reads no clock; the jobs see the
world only through the ports they are handed (jobs/ports.py), never an adapter, and read
the config sections they are handed, never the whole Config; only the
CLI prints, and its composition root (cli/wiring.py) builds the adapters, lazily.
The rule is written in digest/__init__.py; check_layers() enforces it, and is itself
tested on seeded violations.
"""

from __future__ import annotations

import ast
import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "digest"

# What each layer may import from digest (its own folder included).
ALLOWED = {
    "core": {"core"},
    "adapters": {"core", "adapters"},
    "jobs": {"core", "jobs"},  # adapters come in as arguments typed by jobs/ports.py
    "web": {"core", "adapters", "web"},
    "cli": {"core", "adapters", "jobs", "web", "cli"},
    "": {"cli"},  # digest/__init__.py and __main__.py
}
# Modules a layer may not reach even through others: the web app never talks SMTP.
UNREACHABLE = {"web": {"digest.adapters.smtp", "digest.adapters.scheduler", "digest.jobs"}}
FORBIDDEN_IMPORTS = {"smtplib", "socket", "ssl", "httpx", "urllib.request", "http", "sqlalchemy", "alembic",
                     "starlette", "uvicorn", "apscheduler", "aiosmtpd", "psycopg", "requests", "subprocess",
                     "imap_tools", "imaplib", "dns"}
FORBIDDEN_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("date", "today"), ("time", "time"), ("time", "monotonic")}


def _closed(allowed: dict[str, set[str]]) -> dict[str, set[str]]:
    """What each layer may reach through others: the transitive closure of ALLOWED."""
    closed = {k: set(v) for k, v in allowed.items()}
    changed = True
    while changed:
        changed = False
        for reach in closed.values():
            more = set().union(*(closed[x] for x in reach)) - reach
            if more:
                reach |= more
                changed = True
    return closed


REACHABLE = _closed(ALLOWED)


def modules(package: Path) -> dict[str, Path]:
    """Every module of the package by dotted name ("digest.core.group"), migrations aside."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).with_suffix("")
        if "migrations" in rel.parts:
            continue
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        found[".".join(parts)] = path
    return found


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else ""


def _resolve(module: str, is_package: bool, node: ast.ImportFrom | ast.Import, known: set[str]) -> Iterator[str]:
    """The digest modules one import statement names (relative imports resolved)."""
    if isinstance(node, ast.Import):
        bases = [alias.name for alias in node.names]
        names: list[str] = []
    else:
        if node.level:
            here = module.split(".") if is_package else module.split(".")[:-1]
            anchor = here[: len(here) - (node.level - 1)]
            bases = [".".join(anchor + ([node.module] if node.module else []))]
        else:
            bases = [node.module or ""]
        names = [alias.name for alias in node.names]
    for base in bases:
        if not base.startswith("digest"):
            continue
        hits = [f"{base}.{n}" for n in names if f"{base}.{n}" in known]
        yield from hits or ([base] if base in known else [])


@functools.cache
def _parsed(source: str) -> ast.Module:
    """A module's tree, by its text: the seeded copies of the package differ from it in one
    file, and parsing the other ninety again was most of these tests' time."""
    return ast.parse(source)


@functools.cache
def _import_statements(source: str) -> tuple[ast.Import | ast.ImportFrom, ...]:
    return tuple(node for node in ast.walk(_parsed(source)) if isinstance(node, (ast.Import, ast.ImportFrom)))


def direct_imports(package: Path) -> dict[str, set[str]]:
    known = modules(package)
    graph: dict[str, set[str]] = {}
    for name, path in known.items():
        targets: set[str] = set()
        for node in _import_statements(path.read_text()):
            targets.update(_resolve(name, path.name == "__init__.py", node, set(known)))
        targets.discard(name)
        graph[name] = targets
    return graph


def check_layers(package: Path) -> list[str]:
    """Every breach of the layer rule, direct or transitive, as one line each."""
    graph = direct_imports(package)
    problems = []
    for name in sorted(graph):
        own = layer(name)
        for target in sorted(graph[name]):
            if layer(target) not in ALLOWED[own]:
                problems.append(f"{name} ({own or 'top'}) imports {target} ({layer(target) or 'top'})")
        seen: set[str] = set()
        todo = list(graph[name])
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            todo.extend(graph.get(current, ()))
        for target in sorted(seen):
            banned = UNREACHABLE.get(own, set())
            if any(target == b or target.startswith(b + ".") for b in banned):
                problems.append(f"{name} ({own}) reaches {target}")
            elif layer(target) not in REACHABLE[own] and target not in graph[name]:
                problems.append(f"{name} ({own or 'top'}) reaches {target} ({layer(target) or 'top'}) through others")
    return problems


def test_the_package_keeps_its_layers() -> None:
    assert check_layers(PACKAGE) == []


def test_every_module_sits_in_a_layer_folder() -> None:
    loose = [m for m in modules(PACKAGE) if layer(m) == "" and m not in ("digest", "digest.__main__")]
    assert not loose, f"modules outside core/, adapters/, jobs/, web/, cli/: {loose}"


def _seeded(tmp_path: Path, module: str, line: str) -> Path:
    copy = tmp_path / "digest"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    path = copy / module
    path.write_text(path.read_text() + "\n" + line + "\n")
    return copy


def test_a_relative_import_of_an_adapter_into_the_core_is_caught(tmp_path: Path) -> None:
    copy = _seeded(tmp_path, "core/group.py", "from ..adapters import smtp")
    assert "digest.core.group (core) imports digest.adapters.smtp (adapters)" in check_layers(copy)


def test_an_import_reaching_smtp_through_another_module_is_caught(tmp_path: Path) -> None:
    # The ledger may import smtp (both adapters), but the web app, which imports the
    # ledger, must then be reported: it would reach SMTP.
    copy = _seeded(tmp_path, "adapters/ledger.py", "from . import smtp")
    assert "digest.web.app (web) reaches digest.adapters.smtp" in check_layers(copy)


def test_a_job_importing_an_adapter_is_caught(tmp_path: Path) -> None:
    # What a job used to do: build its own QuestionStore. It must be handed a QuestionBook.
    copy = _seeded(tmp_path, "jobs/report.py", "from ..adapters.questions import QuestionStore")
    assert "digest.jobs.report (jobs) imports digest.adapters.questions (adapters)" in check_layers(copy)


def test_a_job_reaching_an_adapter_through_the_core_is_caught(tmp_path: Path) -> None:
    copy = _seeded(tmp_path, "core/group.py", "from digest.adapters import smtp")
    assert "digest.jobs.deliver (jobs) reaches digest.adapters.smtp (adapters) through others" in check_layers(copy)


def test_an_adapter_type_imported_for_checking_only_is_caught_too(tmp_path: Path) -> None:
    copy = _seeded(tmp_path, "jobs/notices.py", "if TYPE_CHECKING:\n    from ..adapters.notices import NoticeLedger")
    assert "digest.jobs.notices (jobs) imports digest.adapters.notices (adapters)" in check_layers(copy)


# The one job that may hold the whole Config: `digest init` writes config.toml and reads it back.
WHOLE_CONFIG_OK = {"digest.jobs.init"}


def _names(annotation: ast.expr) -> set[str]:
    """The names an annotation uses: bare (Config), through a module (config.Config), or
    inside a string ("Config | None")."""
    names = set()
    for node in ast.walk(annotation):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.Attribute):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            try:
                names |= _names(ast.parse(node.value, mode="eval").body)
            except SyntaxError:
                continue
    return names


def check_config_use(package: Path) -> list[str]:
    """Every job that takes the whole Config (imports the name, or annotates with it), as one
    line each: a job is handed the sections it reads (core/sections.py: Publication and the
    tables), never the whole file to find one value in."""
    problems = []
    for name, path in modules(package).items():
        if layer(name) != "jobs" or name in WHOLE_CONFIG_OK:
            continue
        tree = _parsed(path.read_text())
        for node in ast.walk(tree):
            imported = isinstance(node, ast.ImportFrom) and any(a.name == "Config" for a in node.names)
            annotated = isinstance(node, ast.arg) and node.annotation is not None and "Config" in _names(node.annotation)
            if imported or annotated:
                problems.append(f"{name}:{getattr(node, 'lineno', 0)} takes the whole Config")
    return problems


def test_no_job_takes_the_whole_config() -> None:
    assert check_config_use(PACKAGE) == []


def test_a_job_taking_the_whole_config_is_caught(tmp_path: Path) -> None:
    copy = _seeded(tmp_path, "jobs/report.py", "from ..core.config import Config\n\n\ndef late(config: Config) -> None:\n"
                                                "    return None")
    found = check_config_use(copy)
    lines = (copy / "jobs/report.py").read_text().splitlines()
    assert found == [f"digest.jobs.report:{lines.index('from ..core.config import Config') + 1} takes the whole Config",
                     f"digest.jobs.report:{lines.index('def late(config: Config) -> None:') + 1} takes the whole Config"]


def test_a_job_taking_the_whole_config_through_its_module_or_a_string_is_caught(tmp_path: Path) -> None:
    """`config.Config` and "Config" annotate with it as surely as the bare name does."""
    copy = _seeded(tmp_path, "jobs/report.py", "from ..core import config as c\n\n\n"
                                                "def late(a: c.Config, b: 'c.Config | None', d: 'Config') -> None:\n"
                                                "    return None")
    line = (copy / "jobs/report.py").read_text().splitlines().index(
        "def late(a: c.Config, b: 'c.Config | None', d: 'Config') -> None:") + 1
    assert check_config_use(copy) == [f"digest.jobs.report:{line} takes the whole Config"] * 3


HEAVY = ("sqlalchemy", "alembic", "smtplib", "httpx", "imap_tools", "starlette", "uvicorn", "apscheduler")


def _top_level_imports(tree: ast.Module) -> set[str]:
    """The modules a module imports when it is loaded (not inside functions or TYPE_CHECKING)."""
    found: set[str] = set()
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue  # runs when called, not when loaded
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
        todo.extend(ast.iter_child_nodes(node))
    return found


def test_the_composition_root_loads_no_adapter_until_a_part_is_asked_for() -> None:
    top = _top_level_imports(_tree("digest.cli.wiring"))
    eager = sorted(m for m in top if "adapters" in m or m.split(".")[0] in HEAVY)
    assert not eager, f"cli/wiring.py imports {eager} on load: import each adapter where its part is built"


@pytest.mark.slow  # starts processes
def test_wiring_and_the_jobs_load_no_database_mail_or_web_library() -> None:
    """What `digest preview` loads before it asks for a part: the jobs and the wiring alone
    pull in no SQLAlchemy, alembic, smtplib, httpx, IMAP or web library."""
    code = ("import sys, digest.cli.wiring, digest.jobs.preview, digest.jobs.send_issue, digest.jobs.retry, "
            "digest.jobs.inbox, digest.jobs.mail, digest.jobs.subscribers, digest.jobs.report, digest.jobs.outbox, "
            "digest.jobs.doctor, digest.jobs.preflight; "
            f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE.parent).stdout.strip()
    assert loaded == "", f"importing the jobs and the wiring loaded {loaded}"


def test_an_absolute_import_of_a_job_into_an_adapter_is_caught(tmp_path: Path) -> None:
    copy = _seeded(tmp_path, "adapters/fetch.py", "    from digest.jobs.build import build_issue")
    copy_file = copy / "adapters/fetch.py"
    copy_file.write_text(copy_file.read_text().replace("\n    from digest.jobs.build", "\nfrom digest.jobs.build"))
    assert "digest.adapters.fetch (adapters) imports digest.jobs.build (jobs)" in check_layers(copy)


CORE = sorted(name for name in modules(PACKAGE) if layer(name) == "core" and not name.endswith(".core"))


def _tree(module: str) -> ast.Module:
    return _parsed(modules(PACKAGE)[module].read_text())


def _third_party_imports(tree: ast.Module) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_no_io_library(module: str) -> None:
    imported = _third_party_imports(_tree(module))
    bad = {m for m in imported if m in FORBIDDEN_IMPORTS or m.split(".")[0] in FORBIDDEN_IMPORTS}
    assert not bad, f"{module} is core but imports {sorted(bad)}"


@pytest.mark.parametrize("module", CORE)
def test_core_module_reads_no_clock(module: str) -> None:
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            assert (node.func.value.id, node.func.attr) not in FORBIDDEN_CALLS, \
                f"{module}:{node.lineno} reads the clock; take the time as an argument"


@pytest.mark.parametrize("module", sorted(m for m in modules(PACKAGE) if layer(m) != "cli" and m != "digest.__main__"))
def test_only_the_cli_prints_or_exits(module: str) -> None:
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            owner = getattr(getattr(node.func, "value", None), "id", "")
            assert name != "print" and not (owner == "sys" and name == "exit") and not (owner == "click" and name == "echo"), \
                f"{module}:{node.lineno}: only the CLI prints or exits"


@pytest.mark.parametrize("module", CORE)
def test_core_modules_say_their_rule_in_the_docstring(module: str) -> None:
    doc = (ast.get_docstring(_tree(module)) or "").lower()
    assert "no network" in doc or "pure" in doc or "no i/o" in doc or "standard library only" in doc, \
        f"{module}: the docstring must state the no-I/O rule"


def test_every_module_opens_with_a_docstring() -> None:
    missing = [m for m in modules(PACKAGE) if not ast.get_docstring(_tree(m))]
    assert not missing, f"modules without a docstring: {missing}"


def test_modules_stay_small() -> None:
    for name, path in modules(PACKAGE).items():
        lines = len(path.read_text().splitlines())
        assert lines <= 400, f"{name} has {lines} lines: split it by concern"
