"""Compiled templates kept between runs (adapters/template_cache.py): loaded instead of
compiled again, compiled again when the template changes, never taken from a folder
others may write to, and a damaged or vanished cache is only a miss."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
