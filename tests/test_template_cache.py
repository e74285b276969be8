"""Compiled templates kept between runs (adapters/template_cache.py): loaded instead of
compiled again, compiled again when the template changes, never taken from a folder
others may write to, and a damaged or vanished cache is only a miss."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest

from digest.adapters.template_cache import bytecode_cache, cache_folder
from digest.core.render import ENVIRONMENT_TAG, make_environment, use_bytecode_cache
from digest.core.templating import render_file


@pytest.fixture
def cached(tmp_path: Path) -> Iterator[Path]:
    """Every environment made in the test keeps its compiled templates in a folder of tmp_path."""
    folder = tmp_path / "cache"
    cache = bytecode_cache(folder)
    assert cache is not None
    use_bytecode_cache(cache)
    yield folder
    use_bytecode_cache(None)


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the templates Jinja2 compiles from source."""
    names: list[str] = []
    original = jinja2.Environment.compile

    def spy(self: jinja2.Environment, source: object, name: str | None = None, *args: object, **kwargs: object) -> object:
        names.append(str(name))
        return original(self, source, name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(jinja2.Environment, "compile", spy)
    return names


def test_a_new_environment_loads_the_code_an_earlier_one_compiled(cached: Path, compiles: list[str]) -> None:
    make_environment().get_template("issue.html.j2")
    assert compiles == ["issue.html.j2"]
    assert len(list(cached.glob("__jinja2_*.cache"))) == 1
    assert (cached.stat().st_mode & 0o777) == 0o700
    make_environment().get_template("issue.html.j2")  # as the next process would
    assert compiles == ["issue.html.j2"]


def test_an_edited_template_is_compiled_again(cached: Path, tmp_path: Path) -> None:
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "note.txt.j2").write_text("Hello {{ who }}")
    assert render_file(make_environment(str(mine)), "note.txt.j2", {"who": "Ana"}) == "Hello Ana"
    (mine / "note.txt.j2").write_text("Goodbye {{ who }}")
    assert render_file(make_environment(str(mine)), "note.txt.j2", {"who": "Ana"}) == "Goodbye Ana"


def test_a_damaged_entry_or_a_vanished_folder_is_a_miss(cached: Path, tmp_path: Path, compiles: list[str]) -> None:
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "note.txt.j2").write_text("Hello {{ who }}")
    render_file(make_environment(str(mine)), "note.txt.j2", {"who": "Ana"})
    [entry] = cached.glob("__jinja2_*.cache")
    entry.write_bytes(entry.read_bytes()[:40] + b"\x00garbage")
    assert render_file(make_environment(str(mine)), "note.txt.j2", {"who": "Ana"}) == "Hello Ana"
    for left in cached.iterdir():
        left.unlink()
    cached.rmdir()
    assert render_file(make_environment(str(mine)), "note.txt.j2", {"who": "Bo"}) == "Hello Bo"
    assert compiles == ["note.txt.j2"] * 3


def test_a_folder_others_may_write_to_or_a_file_in_the_way_gives_no_cache(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert bytecode_cache(shared) is None
    (tmp_path / "file").write_text("")
    assert bytecode_cache(tmp_path / "file") is None
    assert bytecode_cache(tmp_path / "file" / "below") is None


def test_the_folder_is_the_user_s_cache_and_names_the_environment(tmp_path: Path) -> None:
    assert cache_folder({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "blog-digest" / f"templates-{ENVIRONMENT_TAG}"
    assert cache_folder({}) == Path.home() / ".cache" / "blog-digest" / f"templates-{ENVIRONMENT_TAG}"


def test_code_compiled_for_other_filters_is_compiled_again(cached: Path, tmp_path: Path) -> None:
    """Jinja2 compiles into a template's code how each filter is called (with the context
    or not) and whether it exists: a new version of the program whose filter now takes
    the context, over the same template, must not run the old code (TypeError)."""
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "greet.txt.j2").write_text("{{ who|greet }}")
    before = make_environment(str(mine))
    before.filters["greet"] = lambda who: f"Hello {who}"
    assert render_file(before, "greet.txt.j2", {"who": "Ana"}) == "Hello Ana"

    @jinja2.pass_context
    def greet(context: Any, who: str) -> str:
        return f"{context['greeting']} {who}"

    after = make_environment(str(mine))
    after.filters["greet"] = greet
    assert render_file(after, "greet.txt.j2", {"who": "Ana", "greeting": "Hi"}) == "Hi Ana"


def test_a_folder_on_the_way_others_may_write_to_gives_no_cache(tmp_path: Path) -> None:
    """Whoever may write to a parent can rename the cache folder away and put their own
    code in its place after the check: a parent writable by others (without the sticky bit
    of /tmp), or reached through a symlink to one, gives no cache."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    assert bytecode_cache(shared / "blog-digest" / "templates-x") is None
    (tmp_path / "link").symlink_to(shared)
    assert bytecode_cache(tmp_path / "link" / "templates-x") is None
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    assert bytecode_cache(sticky / "templates-x") is not None


def test_the_folders_it_makes_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """mkdir(parents=True) made the missing parents by the umask: 0775 under the common
    002, so the group could swap the cache folder below them."""
    old = os.umask(0o002)
    try:
        cache = bytecode_cache(tmp_path / "xdg" / "blog-digest" / "templates-x")
    finally:
        os.umask(old)
    assert cache is not None
    for made in (tmp_path / "xdg", tmp_path / "xdg" / "blog-digest", tmp_path / "xdg" / "blog-digest" / "templates-x"):
        assert made.stat().st_mode & 0o777 == 0o700, made


def test_a_relative_xdg_cache_home_is_ignored(tmp_path: Path) -> None:
    """The XDG spec: a relative path in XDG_CACHE_HOME is invalid and ignored (it would put
    compiled code wherever the command happens to run)."""
    assert cache_folder({"XDG_CACHE_HOME": "cache"}) == Path.home() / ".cache" / "blog-digest" / f"templates-{ENVIRONMENT_TAG}"


def test_the_folder_is_made_with_the_first_template_not_by_a_command_that_renders_none(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Callable[..., Any]) -> None:
    """`digest --help` or `digest history` renders nothing: it leaves no cache folder behind."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert run_cli("--help").code == 0 and run_cli("init", "--help").code == 0
    assert not (tmp_path / "xdg").exists()
    made: list[Path] = []

    def make() -> jinja2.BytecodeCache | None:
        made.append(tmp_path / "xdg")
        return bytecode_cache(cache_folder())

    use_bytecode_cache(make)
    assert made == [] and not (tmp_path / "xdg").exists()
    mine = tmp_path / "templates"
    mine.mkdir()
    (mine / "hi.txt.j2").write_text("Hi {{ who }}")
    assert render_file(make_environment(str(mine)), "hi.txt.j2", {"who": "Ana"}) == "Hi Ana"
    make_environment(str(mine))
    assert made == [tmp_path / "xdg"] and cache_folder().is_dir() and any(cache_folder().iterdir())
