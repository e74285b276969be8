"""Hostile XML: bounded time, no file contents, no network requests."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import FeedServer, Reply
from digest.core.errors import FeedParseError
from digest.core.parse import parse_feed

ATOM_OPEN = b"<feed xmlns='http://www.w3.org/2005/Atom'><title>t</title><entry><id>1</id><title>"
ATOM_CLOSE = b"</title></entry></feed>"


def billion_laughs() -> bytes:
    lines = [b'<!ENTITY lol0 "lol">']
    lines += [b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10) for i in range(1, 10)]
    return b"<?xml version='1.0'?><!DOCTYPE feed [" + b"".join(lines) + b"]>" + ATOM_OPEN + b"&lol9;" + ATOM_CLOSE


def quadratic() -> bytes:
    big = b"A" * 100_000
    return (b"<?xml version='1.0'?><!DOCTYPE feed [<!ENTITY a \"" + big + b"\">]>"
            + ATOM_OPEN + b"&a;" * 10_000 + ATOM_CLOSE)


@pytest.mark.parametrize("make", [billion_laughs, quadratic], ids=["billion-laughs", "quadratic-blowup"])
def test_entity_expansion_is_refused_quickly(make: object) -> None:
    data = make()  # type: ignore[operator]
    started = time.monotonic()
    with pytest.raises(FeedParseError, match="declares XML entities"):
        parse_feed(data, "https://b.example/feed")
    assert time.monotonic() - started < 0.5


def test_external_entities_read_no_file_and_fetch_nothing(tmp_path: Path, feed_server: FeedServer) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    dtd = feed_server.serve("/evil.dtd", Reply(body=b'<!ENTITY leak SYSTEM "file:///etc/passwd">'))
    for doctype in (
        f'<!DOCTYPE feed [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'.encode(),
        f'<!DOCTYPE feed [<!ENTITY xxe SYSTEM "{feed_server.url}/xxe">]>'.encode(),
        f'<!DOCTYPE feed SYSTEM "{dtd}">'.encode(),
        f'<!DOCTYPE feed [<!ENTITY % p SYSTEM "{dtd}"> %p;]>'.encode(),
    ):
        data = b"<?xml version='1.0'?>" + doctype + ATOM_OPEN + b"x &xxe; y" + ATOM_CLOSE
        started = time.monotonic()
        try:
            page = parse_feed(data, "https://b.example/feed")
        except FeedParseError:
            continue
        finally:
            assert time.monotonic() - started < 1
        for post in page.posts:
            assert "TOP-SECRET" not in post.title + post.content_html
            assert "root:" not in post.title + post.content_html
    assert feed_server.requests == []
