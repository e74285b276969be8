"""Render a template and turn a mistake in it into one line that names the template's file
and line. Pure core: reads templates, no network, no database, no clock, no file writes.

The author can replace any template ([newsletter] templates_dir); a syntax error or a
misspelt variable there must read `Error: /path/issue.html.j2, line 12: 'titel' is
undefined`, not a traceback.

Compiling a template costs 5 to 30 ms, and every mail builds its own environment: where
no folder keeps compiled templates between runs (adapters/template_cache.py: none is
usable, or none was set, as in the tests), MEMORY_BYTECODE keeps each template's compiled
code for the process, checked against its source, so an edited template is compiled
again and an unchanged one only once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import CodeType, TracebackType
from typing import Any

import jinja2
from jinja2.bccache import Bucket

from .errors import TemplateError


class CheckedBytecodeCache(jinja2.BytecodeCache):
    """A bytecode cache whose entries are good only for the same source compiled for the
    same filters and tests (compiled_in): Jinja2's own checksum covers the source alone."""

    def get_bucket(self, environment: jinja2.Environment, name: str, filename: str | None, source: str) -> Bucket:
        bucket = Bucket(environment, self.get_cache_key(name, filename),
                        self.get_source_checksum(f"{source}\0{compiled_in(environment)}"))
        self.load_bytecode(bucket)
        return bucket


class MemoryBytecodeCache(CheckedBytecodeCache):
    """Compiled templates kept in this process, by template name and file. Jinja compares the
    checksum of the source (with what of the environment is compiled in: compiled_in) before
    using one, so a template edited on disk is compiled afresh. For environments made alike
    (render.make_environment's options, which shape the code too). Safe between threads:
    one dict read or write each."""

    def __init__(self) -> None:
        self._code: dict[str, tuple[str, CodeType]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        hit = self._code.get(bucket.key)
        if hit is not None and hit[0] == bucket.checksum:
            bucket.code = hit[1]

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is not None:
            self._code[bucket.key] = (bucket.checksum, bucket.code)

    def clear(self) -> None:
        self._code.clear()


def compiled_in(environment: jinja2.Environment) -> str:
    """What Jinja2 writes into a template's code from the environment besides its options:
    which filters and tests exist, and what each is passed (the context, the environment)."""
    def passed(functions: Mapping[str, object]) -> str:
        return ",".join(f"{name}:{getattr(f, 'jinja_pass_arg', None)}" for name, f in sorted(functions.items()))

    finalize = getattr(environment.finalize, "jinja_pass_arg", environment.finalize is not None)
    return hashlib.sha256(f"{passed(environment.filters)}|{passed(environment.tests)}|{sorted(environment.extensions)}"
                          f"|{finalize}|{environment.is_async}".encode()).hexdigest()


MEMORY_BYTECODE = MemoryBytecodeCache()


def render_file(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    """env.get_template(name).render(context), with TemplateError for a mistake in it."""
    with template_errors(name):
        return env.get_template(name).render(context)


@contextmanager
def template_errors(what: str) -> Iterator[None]:
    """Turn jinja2's errors (and errors raised while a template runs) into TemplateError."""
    try:
        yield
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(exc.filename or exc.name or what, exc.lineno, exc.message or "syntax error") from None
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(what, None, f"no template named {exc.name!r} (check its name and [newsletter] "
                            "templates_dir)") from None
    except (jinja2.TemplateError, TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
        where = _innermost_template_line(exc.__traceback__)
        if where is None and not isinstance(exc, jinja2.TemplateError):
            raise  # not a template's mistake: a bug of ours, with its traceback
        filename, line = where or (what, None)
        if filename == "<template>":  # a template made from a string: `what` says which
            filename = what
        raise TemplateError(filename, line, str(exc) or type(exc).__name__) from None


def _innermost_template_line(tb: TracebackType | None) -> tuple[str, int] | None:
    """The template file and line where the error happened: jinja2 gives a template's frames
    the template's filename and line numbers."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".j2", ".html", ".txt")) or filename == "<template>":
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found
