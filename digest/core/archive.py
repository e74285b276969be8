"""The archive's Atom feed (RFC 4287) of past issues. Pure core: no network, no database,
no clock (the time of an empty feed comes in), no file writes.

Built with xml.etree, which escapes every text and attribute: a subject is feed text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from xml.etree import ElementTree as ET

from .config import Publication
from .models import IssueRecord
from .sanitize import excerpt, xml_text

ATOM = "http://www.w3.org/2005/Atom"
SUMMARY_CHARS = 300
ET.register_namespace("", ATOM)  # <feed xmlns="...">, not <ns0:feed>


def _stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def archive_feed(pub: Publication, issues: Sequence[IssueRecord], *, now: datetime) -> bytes:
    """The feed of `issues` (newest first): each entry links to /archive/{id}; `now` dates the
    feed only when there is no issue yet."""
    base = f"{pub.base_url}/archive/"

    def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM}}}{tag}", attrs)
        # Issues stored before the feed's text was cleaned may hold what XML forbids.
        element.text = None if text is None else xml_text(text)
        return element

    feed = ET.Element(f"{{{ATOM}}}feed")
    add(feed, "id", base)
    add(feed, "title", f"{pub.blog.name}: past issues")
    add(feed, "link", rel="self", type="application/atom+xml", href=f"{base}feed.xml")
    add(feed, "link", rel="alternate", type="text/html", href=base)
    add(feed, "updated", _stamp(max((i.finished_at or i.created_at for i in issues), default=now)))
    author = add(feed, "author")
    add(author, "name", pub.blog.name)
    add(author, "uri", pub.blog.url)
    for issue in issues:
        entry = add(feed, "entry")
        add(entry, "id", f"{base}{issue.id}")
        add(entry, "title", issue.subject)
        add(entry, "link", rel="alternate", type="text/html", href=f"{base}{issue.id}")
        add(entry, "published", _stamp(issue.created_at))
        add(entry, "updated", _stamp(issue.finished_at or issue.created_at))
        titles = "; ".join(p.title for p in issue.posts)
        count = f"{len(issue.posts)} post{'s' if len(issue.posts) != 1 else ''}"
        add(entry, "summary", excerpt(f"Issue {issue.id}, {count}: {titles}", SUMMARY_CHARS))
    return bytes(ET.tostring(feed, encoding="utf-8", xml_declaration=True))
