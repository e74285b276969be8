"""The files `digest init` writes for a new blog: a commented config.toml and the data
folder's README, rendered from templates/config.toml.j2. Pure core: no network, no
database, no clock, no file writes (jobs/init.py writes what this returns).

The shipped config.toml is this template rendered with the sample blog's values
(tests/test_init.py checks that they match), so every key and comment a new blog gets is
the one the project documents and tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

import jinja2

from .render import make_environment

NEW_HEADER = """# blog-digest configuration for {name}, written by `digest init`.
# Every key is explained above it. Edit [blog], [newsletter] from and [smtp] first.
# Secrets never live here: only the names of the environment variables that hold them.
# Relative paths are relative to this file."""


@dataclass(frozen=True)
class StarterValues:
    """The values a config.toml depends on; the rest of the file is the same for every blog."""

    blog_name: str
    blog_url: str
    feed_url: str
    contact_url: str = ""
    postal_address: str = ""
    user_agent: str = "blog-digest/0.1"
    from_: str = "Newsletter <newsletter@example.com>"
    reply_to: str = ""
    subject: str = "{{ headline }}"
    first_issue_days: int = 7
    list_id: str = ""
    question_url: str = ""
    question_email: str = ""
    topics: Sequence[tuple[str, str]] = ()
    allowed_origins: Sequence[str] = field(default_factory=tuple)
    consent_text: str = ""


def blog_home(blog_url: str) -> str:
    """The blog's home page as written in config.toml: a scheme, a trailing slash."""
    url = blog_url.strip()
    if "://" not in url:
        url = "https://" + url
    return url if url.endswith("/") else url + "/"


def feed_address(blog_url: str) -> str:
    """Blogger's feed of the blog's posts."""
    return blog_home(blog_url) + "feeds/posts/default"


def pages_feed_address(blog_url: str) -> str:
    """Blogger's feed of the blog's pages (its Contact page, if it has one, is one of them)."""
    return blog_home(blog_url) + "feeds/pages/default"


def guessed_name(blog_url: str) -> str:
    """A name made from the blog's address, when its feed gives none: "thewisejobsearch" -> "Thewisejobsearch"."""
    return (urlsplit(blog_home(blog_url)).hostname or "my blog").split(".")[0].replace("-", " ").title()


def values_for_blog(blog_url: str, name: str = "", contact_url: str = "") -> StarterValues:
    """Starting values for the blog at `blog_url` (Blogger's feed address guessed from it);
    `contact_url`, its Contact page, is where the newsletter's "Ask your question" leads."""
    url = blog_home(blog_url)
    parts = urlsplit(url)
    name = name.strip() or guessed_name(url)
    return StarterValues(
        blog_name=name, blog_url=url, feed_url=feed_address(url), contact_url=contact_url, question_url=contact_url,
        user_agent=f"blog-digest/0.1 (+{url})", from_=f"{name} <newsletter@example.com>",
        allowed_origins=(f"{parts.scheme}://{parts.netloc}",),
        consent_text=f"Send me the weekly newsletter of {name}. I can unsubscribe at any time.",
    )


SAMPLE_BLOG = "https://thewisejobsearch.blogspot.com/"


def sample_values(feed: str) -> StarterValues:
    """The sample blog's values, as the shipped config.toml holds them, reading `feed`."""
    contact = SAMPLE_BLOG + "p/contact.html"
    return StarterValues(
        blog_name="The Wise Job Search", blog_url=SAMPLE_BLOG, feed_url=feed, contact_url=contact,
        postal_address="The Wise Job Search, 100 Example Street, Springfield, USA",
        user_agent=f"blog-digest/0.1 (+{SAMPLE_BLOG})", from_="The Wise Job Search <newsletter@example.com>",
        reply_to="questions@example.com",
        subject="{{ headline }}",
        list_id="The Wise Job Search <weekly.thewisejobsearch.example.com>", question_url=contact,
        question_email="questions@example.com",
        topics=(("Interviewing", "Interviews"), ("Resumes", "Resumes & cover letters"), ("Networking", "Networking"),
                ("Salary & Offers", "Offers & salary"), ("Workplace Culture", "Workplace culture")),
        allowed_origins=("https://thewisejobsearch.blogspot.com",),
        consent_text="Send me the weekly newsletter of The Wise Job Search. I can unsubscribe at any time.",
    )


def try_out_values(feed: str) -> StarterValues:
    """The sample blog for a local try-out: the first issue holds the whole sample feed,
    whose posts are older than a week."""
    return replace(sample_values(feed), first_issue_days=36500)


def toml_value(value: object) -> str:
    """A TOML literal for a string, a number or a list of strings (JSON's escapes are TOML's)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"no TOML form for {value!r}")
    return repr(value)


def render_config(values: StarterValues, *, header: str | None = None, sample: bool = False,
                  env: jinja2.Environment | None = None) -> str:
    """config.toml's text for `values`; `sample` keeps the shipped file's own header."""
    env = env or make_environment()
    env.filters["toml"] = toml_value
    topics = "\n".join(f"{toml_value(label)} = {toml_value(topic)}" for label, topic in values.topics)
    if not topics:
        topics = '# "Your label" = "Topic shown in the newsletter"'
    context = {k: getattr(values, k) for k in values.__dataclass_fields__}
    context.update(topics=topics, sample=sample, header=header or NEW_HEADER.format(name=toml_value(values.blog_name)))
    return env.get_template("config.toml.j2").render(context)
