"""Build small Blogger-style Atom and RSS documents for tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

LABEL_SCHEME = "http://www.blogger.com/atom/ns#"


@dataclass
class Entry:
    n: int
    title: str = ""
    published: str | None = "2026-11-20T08:00:00.000-05:00"
    updated: str | None = None
    labels: list[str] = field(default_factory=list)
    html: str = "<p>Body of the post.</p>"
    link: str | None = None
    id: str | None = None
    extra: str = ""

    def xml(self, blog: str) -> str:
        title = self.title or f"Post number {self.n}"
        link = self.link if self.link is not None else f"{blog}/2026/11/post-{self.n}.html"
        parts = ["<entry>", f"<id>{escape(self.id or f'tag:blogger.com,1999:blog-1.post-{self.n}')}</id>"]
        if self.published:
            parts.append(f"<published>{self.published}</published>")
        if self.updated or self.published:
            parts.append(f"<updated>{self.updated or self.published}</updated>")
        parts += [f"<category scheme='{LABEL_SCHEME}' term={quoteattr(label)}/>" for label in self.labels]
        parts.append(f"<title type='text'>{escape(title)}</title>")
        parts.append(f"<content type='html'>{escape(self.html)}</content>")
        if link:
            parts.append(f"<link rel='alternate' type='text/html' href={quoteattr(link)}/>")
        parts.append(self.extra)
        parts.append("</entry>")
        return "".join(parts)


def atom(entries: list[Entry], *, blog: str = "https://blog.example.com", next_url: str | None = None,
         feed_labels: list[str] | None = None, title: str = "Test blog") -> bytes:
    head = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        "<feed xmlns='http://www.w3.org/2005/Atom' xmlns:feedburner='http://rssnamespace.org/feedburner/ext/1.0'"
        " xmlns:media='http://search.yahoo.com/mrss/'>",
        f"<id>tag:blogger.com,1999:blog-1</id><title type='text'>{escape(title)}</title>",
        f"<link rel='alternate' type='text/html' href='{blog}/'/>",
    ]
    head += [f"<category term={quoteattr(label)}/>" for label in feed_labels or []]
    if next_url:
        head.append(f"<link rel='next' type='application/atom+xml' href={quoteattr(next_url)}/>")
    return ("".join(head) + "".join(e.xml(blog) for e in entries) + "</feed>").encode("utf-8")
