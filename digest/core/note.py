"""The editor's note of one issue: Markdown in, safe HTML and plain text out. Pure core: no
network, no database, no clock, no file writes (the CLI reads the file and passes its text).

The note is the author's own text, but it is handled like feed content: markdown-it with
raw HTML turned off, then nh3 with a short list of tags and http(s)/mailto links only.
Headings become bold paragraphs (the issue's own headings keep their order) and images
are not rendered (an issue's images are its posts' thumbnails).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import nh3

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

_TAGS = {"p", "br", "strong", "em", "a", "ul", "ol", "li", "blockquote", "code", "pre"}
_ATTRIBUTES = {"a": {"href"}, "ol": {"start"}}
_SCHEMES = {"http", "https", "mailto"}


@dataclass(frozen=True)
class Note:
    """A note as each part of the mail shows it; empty when the issue has none."""

    html: str = ""
    text: str = ""

    def __bool__(self) -> bool:
        return bool(self.html or self.text)


NO_NOTE = Note()


@cache
def _markdown() -> MarkdownIt:
    """The parser, made on first use: an issue without a note (a preview) loads no markdown-it."""
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.disable(["image", "html_block", "html_inline"])

    def heading_open(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        return "<p><strong>"

    def heading_close(renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: Any) -> str:
        return "</strong></p>\n"

    md.add_render_rule("heading_open", heading_open)
    md.add_render_rule("heading_close", heading_close)
    return md


def render_note(markdown: str) -> Note:
    """The note's HTML (sanitised) and its plain text, from the Markdown the author wrote."""
    if not markdown.strip():
        return NO_NOTE
    md = _markdown()
    tokens = md.parse(markdown)
    html = md.renderer.render(tokens, md.options, {})
    clean = nh3.clean(html, tags=_TAGS, attributes=_ATTRIBUTES, url_schemes=_SCHEMES, link_rel="noopener noreferrer",
                      strip_comments=True)
    return Note(html=clean.strip(), text=note_text(tokens))


def note_text(tokens: Sequence[Token]) -> str:
    """The plain text of parsed Markdown: paragraphs apart, list items marked, links as
    "text (url)", wrapped at 72 columns; URLs are never broken."""
    blocks: list[tuple[str, str, bool]] = []  # (first-line prefix, text, joins the item above)
    lists: list[int | None] = []        # the open lists: None for bullets, else the next number
    marker = ""
    quote = 0
    in_item = False  # the last block was an item of the list still open
    for tok in tokens:
        if tok.type == "bullet_list_open":
            lists.append(None)
            in_item = False
        elif tok.type == "ordered_list_open":
            lists.append(int(tok.attrGet("start") or 1))
            in_item = False
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            lists.pop()
        elif tok.type == "list_item_open":
            number = lists[-1]
            marker = "- " if number is None else f"{number}. "
            if number is not None:
                lists[-1] = number + 1
        elif tok.type == "blockquote_open":
            quote += 1
        elif tok.type == "blockquote_close":
            quote -= 1
        elif tok.type == "inline":
            indent = "  " * max(len(lists) - 1, 0) + "> " * quote
            blocks.append((indent + marker, _inline_text(tok.children or []), in_item and bool(marker)))
            in_item = bool(lists)
            marker = ""
        elif tok.type in ("code_block", "fence"):
            blocks.append(("", tok.content.rstrip("\n"), False))
        elif tok.type == "hr":
            blocks.append(("", "* * *", False))
    out = ""
    for i, (prefix, text, next_item) in enumerate(blocks):
        if "\n" in text:  # code, or hard line breaks: as written
            block = "\n".join(prefix + line if n == 0 else " " * len(prefix) + line for n, line in enumerate(text.split("\n")))
        else:
            block = textwrap.fill(text, width=72, initial_indent=prefix, subsequent_indent=" " * len(prefix),
                                  break_long_words=False, break_on_hyphens=False)
        # the items of one list stay together; every other block stands apart
        out += ("" if i == 0 else "\n" if next_item else "\n\n") + block
    return out


def _inline_text(children: Sequence[Token]) -> str:
    parts: list[str] = []
    links: list[tuple[str, int]] = []  # (href, where its text starts)
    for tok in children:
        if tok.type in ("text", "code_inline"):
            parts.append(tok.content)
        elif tok.type == "softbreak":
            parts.append(" ")
        elif tok.type == "hardbreak":
            parts.append("\n")
        elif tok.type == "link_open":
            links.append((str(tok.attrGet("href") or ""), len(parts)))
        elif tok.type == "link_close" and links:
            href, start = links.pop()
            shown = "".join(parts[start:])
            if href and href.removeprefix("mailto:") != shown:
                parts.append(f" ({href.removeprefix('mailto:')})")
    return "".join(parts)
