"""Check that links and images answer: HEAD, then GET when HEAD is refused; redirects
followed; a bounded number at once, each within a timeout. Adapter (HTTP, httpx).

TLS is verified against the system's CAs (ssl.create_default_context, which also reads
SSL_CERT_FILE). Image bodies are read only to learn their size, and no further than
`max_bytes`.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence

import httpx

from ..core.deliverability import Fetched

CONCURRENCY = 8


def fetch_all(urls: Sequence[str], *, timeout: float, user_agent: str, images: bool = False,
              max_bytes: int = 20_000_000, concurrency: int = CONCURRENCY) -> list[Fetched]:
    """What each URL answered, in the order given."""
    if not urls:
        return []
    return asyncio.run(_fetch_all(list(urls), timeout, user_agent, images, max_bytes, concurrency))


async def _fetch_all(urls: list[str], timeout: float, user_agent: str, images: bool, max_bytes: int,
                     concurrency: int) -> list[Fetched]:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=True, verify=ssl.create_default_context(),
                                 headers={"User-Agent": user_agent}, limits=limits, trust_env=False,
                                 max_redirects=10) as client:
        async def one(url: str) -> Fetched:
            async with gate:
                try:
                    return await asyncio.wait_for(_one(client, url, images, max_bytes), timeout * 3)
                except (httpx.TimeoutException, TimeoutError):
                    return Fetched(url, error=f"no answer within {timeout:g} s", timed_out=True)
                except httpx.TooManyRedirects:
                    return Fetched(url, error="more than 10 redirects")
                except httpx.HTTPError as exc:
                    return Fetched(url, error=_reason(exc))

        return list(await asyncio.gather(*(one(u) for u in urls)))


async def _one(client: httpx.AsyncClient, url: str, images: bool, max_bytes: int) -> Fetched:
    head = await client.head(url)
    length = head.headers.get("content-length")
    if head.status_code < 400 and (not images or (length and length.isdigit())):
        return Fetched(url, head.status_code, str(head.url), content_type=head.headers.get("content-type", ""),
                       size=int(length) if images and length else None)
    async with client.stream("GET", url) as reply:  # HEAD refused (405, 404 for HEAD only...), or an image's size
        size = 0
        if images and reply.status_code < 400:
            async for chunk in reply.aiter_raw():
                size += len(chunk)
                if size > max_bytes:
                    break
        return Fetched(url, reply.status_code, str(reply.url), content_type=reply.headers.get("content-type", ""),
                       size=size if images else None)


def _reason(exc: httpx.HTTPError) -> str:
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"its TLS certificate is not trusted ({cause.verify_message})"
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:200]
