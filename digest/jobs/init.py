"""`digest init`: a new blog's folder with a commented config.toml, the data folder and
the link secret. A job (layer 3): reads the blog's feeds (its title, its Contact page),
writes files, never over existing ones.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..core.config import Config, read_config
from ..core.errors import ConfigError, DigestError, InputError
from ..core.parse import FetchOptions
from ..core.render import make_environment
from ..core.starter import StarterValues, feed_address, pages_feed_address, render_config
from .ports import Fetch

_PACKAGE = Path(__file__).resolve().parent.parent


def sample_feed() -> Path:
    """The sample feed the package carries (the wheel maps examples/ to digest/examples), else
    the source tree's: `digest init --sample` works from any folder."""
    installed = _PACKAGE / "examples" / "sample-feed.xml"
    return installed if installed.is_file() else _PACKAGE.parent / "examples" / "sample-feed.xml"


@dataclass(frozen=True)
class BlogFacts:
    """What the blog's own feeds say: its title, its Contact page; `problem`, why its feed
    could not be read ("" when it was)."""

    title: str = ""
    contact_url: str = ""
    problem: str = ""


def look_up_blog(blog_url: str, fetch_feed: Fetch, *, timeout_seconds: float = 10.0) -> BlogFacts:
    """The blog's title from its posts feed and its Contact page from its pages feed
    (`fetch_feed`: adapters/fetch.py's, handed in by the CLI)."""
    parts = urlsplit(blog_url)
    if parts.scheme not in ("http", "https") or parts.username or any(c.isspace() or c in "\"'<>" for c in blog_url):
        return BlogFacts(problem="not an http(s) address")  # config.toml refuses it, with the key named
    options = FetchOptions(timeout_seconds=timeout_seconds, deadline_seconds=timeout_seconds * 2, max_pages=1,
                           page_size=1)
    try:
        title = fetch_feed(feed_address(blog_url), options).title
    except DigestError as exc:
        return BlogFacts(problem=str(exc))
    try:
        pages = fetch_feed(pages_feed_address(blog_url), FetchOptions(
            timeout_seconds=timeout_seconds, deadline_seconds=timeout_seconds * 2, max_pages=1, page_size=50)).posts
    except DigestError:
        pages = ()  # a blog without pages has no Contact page
    contact = next((p.link for p in pages if "contact" in p.title.lower() or "/contact" in p.link.lower()), "")
    return BlogFacts(title=title, contact_url=contact)


@dataclass(frozen=True)
class InitResult:
    config: Path
    data: Path
    secret: Path


def init_project(folder: Path, values: StarterValues, make_secret: Callable[[Config], str]) -> InitResult:
    """Write folder/config.toml, folder/subscribers/ (with its README) and the secret file
    (`make_secret`: adapters/secret.py's load_or_create_secret, handed in by the CLI)."""
    config_path = folder / "config.toml"
    if config_path.exists():
        raise InputError(f"{config_path}: already exists; digest init never overwrites a config (choose another folder)")
    data = folder / "subscribers"
    try:
        data.mkdir(parents=True, exist_ok=True)
        readme = data / "README.md"
        if not readme.exists():
            readme.write_text(make_environment().get_template("subscribers_readme.md.j2").render(), encoding="utf-8")
        text = render_config(values)
        with config_path.open("x", encoding="utf-8") as out:  # "x": a config made meanwhile is never replaced
            out.write(text)
    except FileExistsError as exc:
        raise InputError(f"{config_path}: already exists; digest init never overwrites a config") from exc
    except OSError as exc:
        raise InputError(f"{folder}: cannot write there: {exc.strerror}") from exc
    environ = dict(os.environ)
    try:
        config = read_config(config_path, environ)
    except ConfigError:  # a value it was given (--blog-url) is refused: no config that does not load stays behind
        config_path.unlink(missing_ok=True)
        raise
    if config.web.secret:  # the variable is set in this shell: init writes the secret file all the same
        environ.pop(config.web.secret_env, None)
        config = read_config(config_path, environ)
    make_secret(config)
    return InitResult(config_path, data, Path(config.web.secret_file))
