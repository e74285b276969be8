"""Render a template and turn a mistake in it into one line that names the template's file
and line. Pure core: reads templates, no network, no database, no clock, no file writes.

The author can replace any template ([newsletter] templates_dir); a syntax error or a
misspelt variable there must read `Error: /path/issue.html.j2, line 12: 'titel' is
undefined`, not a traceback.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import jinja2

from .errors import TemplateError


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
