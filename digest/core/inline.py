"""Inline an issue's CSS with premailer, once per issue. Pure core: no network (premailer
runs with allow_network=False, and sanitised feed content carries no <style>, <link> or
@import), no database, no clock, no file writes.
"""

from __future__ import annotations

import logging
import re

import premailer

_STYLE_BLOCK = re.compile(r"(<style\b[^>]*>)(.*?)(</style>)", re.S | re.I)
_IMPORT = re.compile(r"@import\b[^;]*;?", re.I)
_QUIET = logging.getLogger("digest.premailer")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def inline_css(html: str) -> str:
    """The HTML with its stylesheet inlined; @media rules stay in a <style> block with their
    !important kept, so the mobile and dark-mode overrides still win over inlined styles."""
    # cssutils fetches @import even with allow_network=False: take them out first.
    html = _STYLE_BLOCK.sub(lambda m: m.group(1) + _IMPORT.sub("", m.group(2)) + m.group(3), html)
    inliner = premailer.Premailer(
        html,
        allow_network=False,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        disable_leftover_css=False,
        cssutils_logging_handler=logging.NullHandler(),
        cssutils_logging_level=logging.CRITICAL,
        cache_css_parsing=True,
    )
    return str(inliner.transform(pretty_print=False))
