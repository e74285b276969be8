"""Make feed text safe and plain: nh3 for HTML, clean titles, excerpts, thumbnails.
Pure core: no network, no database, no clock, no file writes.
"""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import urljoin, urlsplit

import nh3

from .depth import flatten_deep

# Tags whose content goes too, not just the tag: code, embedded pages, forms and styling
# must never reach the email (premailer would otherwise follow <link> and @import).
_DROP_WITH_CONTENT = {
    "script", "style", "iframe", "object", "embed", "form", "textarea", "select",
    "button", "noscript", "template", "svg", "math", "link", "meta", "frame", "frameset",
}
_TAGS = set(nh3.ALLOWED_TAGS) - {"map", "area"} - _DROP_WITH_CONTENT
_URL_ATTRS = {"href", "src", "cite"}
_SCHEMES = {"http", "https", "mailto"}
_TRACKER = re.compile(r"^https?://(feeds\.feedburner\.com|feedproxy\.google\.com)/~(r|ff|a)/", re.I)
_PIXEL = re.compile(r'<img\b(?=[^>]*\bwidth="1")(?=[^>]*\bheight="1")[^>]*>|<img\b(?![^>]*\bsrc=)[^>]*>')
# Every element that ends a line or a block where it opens or closes: a space goes there, so that
# words either side never join ("Committee</dt></dl>The" -> "Committee The").
_BLOCK = re.compile(
    r"<(?:/?(?:address|article|aside|blockquote|br|caption|dd|details|div|dl|dt|figcaption|figure|footer|h[1-6]"
    r"|header|hr|li|main|nav|ol|p|pre|section|summary|table|tbody|td|tfoot|th|thead|tr|ul)\b)[^>]*>", re.I)
_SPACE = re.compile(r"\s+")
_INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200b\ufeff]")
# What XML 1.0 forbids (its Char production: controls but tab, LF and CR; lone surrogates;
# U+FFFE and U+FFFF) and the other Unicode noncharacters, which it discourages: one of them
# in a post's title made /archive/feed.xml invalid for as long as the issue was listed.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff"
                      + "".join(f"{chr(plane << 16 | 0xFFFE)}{chr(plane << 16 | 0xFFFF)}" for plane in range(1, 17))
                      + "]")
_BLOGGER_SIZE = re.compile(r"(?<=[/=])s\d+(?:-c)?(?=/|$)")


def safe_url(url: str | None, base: str = "") -> str | None:
    """An absolute http(s) URL resolved against `base`, or None if it is anything else."""
    if not url:
        return None
    url = xml_text(url.strip())
    if any(c in url for c in "\r\n\0") or any(ord(c) < 32 for c in url):
        return None
    full = urljoin(base, url) if base else url
    parts = urlsplit(full)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return full


def xml_text(text: str) -> str:
    """`text` without the characters XML forbids or reserves (noncharacters, controls but
    tab, LF and CR, lone surrogates): what reaches XML, a header or HTML."""
    return text if text.isascii() and text.isprintable() else _NOT_XML.sub("", text)


def sanitize_html(fragment: str, base: str = "") -> str:
    """Feed HTML with only harmless tags and attributes, links made absolute, trackers gone,
    no character XML forbids (before and after nh3: it turns `&#xFFFE;` into the character)."""
    fragment = flatten_deep(xml_text(fragment))

    def keep(tag: str, attr: str, value: str) -> str | None:
        if attr not in _URL_ATTRS:
            return value
        if value.strip().lower().startswith("mailto:") and tag == "a":
            return value.strip()
        url = safe_url(value, base)
        if url is None or (tag == "img" and _TRACKER.match(url)):
            return None
        return url

    cleaned = nh3.clean(
        fragment,
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attribute_filter=keep,
        url_schemes=_SCHEMES,
        link_rel="noopener noreferrer",
    )
    return xml_text(_PIXEL.sub("", cleaned))


def plain_text(fragment: str) -> str:
    """The words of an HTML fragment, entities decoded, whitespace collapsed."""
    spaced = _BLOCK.sub(" ", fragment)
    text = nh3.clean(spaced, tags=set(), clean_content_tags={"script", "style"})
    return clean_line(html.unescape(text))


def clean_line(text: str) -> str:
    """One line of text: control, lone-surrogate, noncharacter and bidi-override characters
    removed, whitespace collapsed."""
    if text.isascii() and text.isprintable():  # nothing to normalise or remove (a send cleans every name)
        return _SPACE.sub(" ", text).strip()
    return _clean_line_fully(text)


def _clean_line_fully(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = xml_text("".join(" " if unicodedata.category(c) in ("Cc", "Cs") else c for c in text))
    return _SPACE.sub(" ", _INVISIBLE.sub("", text)).strip()


def clean_title(title: str, is_html: bool) -> str:
    """A post title as plain text, whatever markup or line breaks the feed put in it."""
    return plain_text(title) if is_html else clean_line(title)


def excerpt(text: str, limit: int) -> str:
    """`text` cut at a word boundary to at most `limit` characters, with an ellipsis if cut."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 1)]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.-–—") + "…"


def sized_thumbnail(url: str, width: int) -> str:
    """Blogger's 72 px square crop (/s72-c/) rewritten to an image `width` pixels wide."""
    if "blogger" in urlsplit(url).netloc or "googleusercontent" in urlsplit(url).netloc or "bp.blogspot" in url:
        return _BLOGGER_SIZE.sub(f"w{width}", url, count=1)
    return url


def first_image(fragment: str) -> str | None:
    """The src of the first image of sanitised HTML, if any."""
    m = re.search(r'<img\b[^>]*\bsrc="([^"]+)"', fragment)
    return html.unescape(m.group(1)) if m else None
