"""Inline an issue's CSS with premailer, once per issue. Pure core: no network (premailer
runs with allow_network=False, and sanitised feed content carries no <style>, <link> or
@import), no database, no clock, no file writes.

An inline costs about 20 ms and depends on the HTML alone: the last few results are kept, so
that a process that prepares the same issue again (`digest serve`'s retry timer, a run
that resumes an issue, the test suite's many sends of the sample feed) inlines it once.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import sys
import threading
import types
from typing import NoReturn


class _Deferred(types.ModuleType):
    """Stands for a module premailer imports but ours never uses, until one of its names is
    read: then the module is imported (for whoever read it) and the name read from it."""

    def __getattr__(self, name: str) -> object:
        if sys.modules.get(self.__name__) is self:  # read while premailer itself is imported
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), name)


# premailer imports `requests` for the stylesheets it could fetch; ours never fetches
# (allow_network=False, and a session that refuses). requests and urllib3 stay unloaded:
# 40-50 ms of each command that inlines CSS. The stand-in is in sys.modules only while
# premailer is imported (premailer.requests stays it): left there, it broke everyone
# else's requests (importlib.util.find_spec raised; `import requests.adapters` ran that
# module twice). (importlib's LazyLoader would not do: on Python 3.11 an import statement
# reads the module's __spec__, which loads it.)
_REQUESTS = _Deferred("requests")
if "requests" not in sys.modules and "premailer" not in sys.modules:
    sys.modules["requests"] = _REQUESTS
try:
    import premailer
finally:
    if sys.modules.get("requests") is _REQUESTS:
        del sys.modules["requests"]

_STYLE_BLOCK = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.S | re.I)
_IMPORT = re.compile(r"@import\b[^;]*;?", re.I)
_CSSUTILS = logging.getLogger("CSSUTILS")  # cssutils.log's logger
_LOCK = threading.Lock()


class _NoNetwork:
    """The HTTP session premailer is given: a stylesheet to fetch is refused, never fetched."""

    def get(self, url: str, *args: object, **kwargs: object) -> NoReturn:
        raise ValueError(f"premailer asked to fetch {url!r}: inlining never reaches the network")


class _Collect(logging.Handler):
    """Keeps what cssutils says of the CSS it could not read (the rules it drops)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(record.getMessage().split())
        if message and message != "No content to parse.":
            self.messages.append(message)


_SHEETS_KEPT = 32
_SHEETS: dict[tuple[str, bool], tuple[object, tuple[str, ...]]] = {}  # guarded by _LOCK


class _Inliner(premailer.Premailer):  # type: ignore[misc]  # premailer has no type hints
    """premailer, parsing each stylesheet once per process as its own cache does, but keeping
    with each what cssutils said of it: premailer's cache would make a second issue with the
    same stylesheet (a long-running `digest serve`) report no dropped rule."""

    collect: _Collect

    def _parse_css_string(self, css_body: str, validate: bool = True) -> object:
        key = (css_body, validate)
        if key not in _SHEETS:
            start = len(self.collect.messages)
            sheet = premailer.premailer.cssutils.parseString(css_body, validate=validate)
            if len(_SHEETS) >= _SHEETS_KEPT:
                del _SHEETS[next(iter(_SHEETS))]
            _SHEETS[key] = (sheet, tuple(self.collect.messages[start:]))
            return sheet
        sheet, said = _SHEETS[key]
        self.collect.messages.extend(said)
        return sheet


def _forget_style_attributes() -> None:
    """premailer keeps what cssutils made of each style="" attribute for the process too
    (merge_style.csstext_to_pairs, in premailer/cache.py's one cache), and cssutils says what
    it drops only while parsing: forgotten before each inline, a second issue with the same
    attribute (next week's, in `digest serve`) still says it. Only the attributes' entries
    go, keyed by the text alone: the same cache holds the rules' declarations (asked for with
    validate=, a longer key) and the compiled selectors (not lists), which say nothing and
    stay. Called with _LOCK held."""
    cache = premailer.cache.cache
    with premailer.cache.cache_access_lock:
        for key in [k for k in cache if len(k) == 1]:
            if isinstance(cache.get(key), list):
                del cache[key]


def inline_css(html: str) -> str:
    """The HTML with its stylesheet inlined; @media rules stay in a <style> block with their
    !important kept, so the mobile and dark-mode overrides still win over inlined styles."""
    return inline_css_checked(html)[0]


@functools.lru_cache(maxsize=16)
def inline_css_checked(html: str) -> tuple[str, tuple[str, ...]]:
    """inline_css, and one line per CSS rule or declaration premailer could not use (the
    same answer for the same HTML: inline_css_checked.__wrapped__ inlines it afresh)."""
    # cssutils fetches @import even with allow_network=False: take them out first.
    html = _STYLE_BLOCK.sub(lambda m: m.group(1) + _IMPORT.sub("", m.group(2)) + m.group(3), html)
    inliner = _Inliner(
        html,
        allow_network=False,
        session=_NoNetwork(),
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        disable_leftover_css=False,
        cache_css_parsing=False,  # _Inliner keeps the parsed stylesheets, with their warnings
        # Its only use is an align attribute on images floated by CSS: neither the templates
        # nor sanitised posts float one, and it parses each <img style> with validation on,
        # compiling cssutils' property regexes (0.3 s of a preview's start).
        align_floating_images=False,
    )
    # cssutils reports through one global logger (with a handler printing to stderr): for the
    # length of one inline, its messages go to `collect` alone.
    collect = inliner.collect = _Collect()
    with _LOCK:
        _forget_style_attributes()
        handlers, level, propagate = _CSSUTILS.handlers[:], _CSSUTILS.level, _CSSUTILS.propagate
        _CSSUTILS.handlers, _CSSUTILS.propagate = [collect], False
        _CSSUTILS.setLevel(logging.WARNING)
        try:
            out = str(inliner.transform(pretty_print=False))
        finally:
            _CSSUTILS.handlers, _CSSUTILS.propagate = handlers, propagate
            _CSSUTILS.setLevel(level)
    return out, tuple(f"a CSS rule was dropped: {m}" for m in dict.fromkeys(collect.messages))
