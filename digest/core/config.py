"""config.toml -> frozen Config (its sections: sections.py, named here too). Pure core:
reads the file it is given, writes nothing, no network, no database, no clock. The
environment comes in as an argument.

Every problem is one ConfigError line naming the file, table, key and value.
"""

from __future__ import annotations

import re
import tomllib
import typing
import unicodedata
import zoneinfo
from collections.abc import Mapping
from dataclasses import MISSING, fields, replace
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar

from .address import wire_address
from .checks import ADDRESS_KEYS, BOUNDS, URL_KEYS, address_problem, coerce, url_problem
from .errors import ConfigError, InputError
from .sections import (
    AuthorConfig,
    BlogConfig,
    Config,
    FeedConfig,
    InboxConfig,
    NewsletterConfig,
    Publication,
    QuestionConfig,
    ScheduleConfig,
    SMTPConfig,
    StoreConfig,
    WebConfig,
    parse_cron,
)
from .verp import MAX_RETURN_PATH_LOCAL

__all__ = ["AuthorConfig", "BlogConfig", "Config", "FeedConfig", "InboxConfig", "NewsletterConfig", "Publication",
           "QuestionConfig", "SMTPConfig", "ScheduleConfig", "StoreConfig", "WebConfig", "load_config", "read_config"]
T = TypeVar("T")

_TABLES: dict[str, type] = {
    "blog": BlogConfig,
    "feed": FeedConfig,
    "newsletter": NewsletterConfig,
    "question": QuestionConfig,
    "schedule": ScheduleConfig,
    "smtp": SMTPConfig,
    "store": StoreConfig,
    "web": WebConfig,
    "inbox": InboxConfig,
    "author": AuthorConfig,
}
_REQUIRED_TABLES = ("blog", "feed", "newsletter")
_DERIVED = {"password", "secret"}  # filled from the environment, never from the file


def read_config(path: Path, environ: Mapping[str, str]) -> Config:
    """Read and check config.toml at `path`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "no such file (pass --config or set DIGEST_CONFIG)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), f"cannot read: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from exc
    return load_config(data, environ, path)


def load_config(data: Mapping[str, Any], environ: Mapping[str, str], path: Path) -> Config:
    """Turn the parsed TOML and the environment into a checked Config."""
    where = str(path)
    for name in data:
        if name not in _TABLES and name != "topics":
            raise ConfigError(where, f"unknown table [{name}]", key=name)
    for name in _REQUIRED_TABLES:
        if name not in data:
            raise ConfigError(where, f"missing table [{name}]", key=name)
    built: dict[str, Any] = {name: _build(cls, name, data.get(name, {}), where) for name, cls in _TABLES.items()}
    _check(built, where)
    topics = _topics(data.get("topics", {}), where)
    base = path.parent
    feed: FeedConfig = built["feed"]
    if not re.match(r"^https?://", feed.url):
        feed = replace(feed, url=str((base / feed.url).resolve()))
    store: StoreConfig = built["store"]
    store = replace(store, url=_resolve_sqlite(store.url, base))
    smtp: SMTPConfig = built["smtp"]
    smtp = replace(smtp, password=_env(environ, smtp.password_env))
    if smtp.ca_file:
        smtp = replace(smtp, ca_file=str((base / smtp.ca_file).resolve()))
    web: WebConfig = built["web"]
    web = replace(web, secret=_env(environ, web.secret_env), base_url=web.base_url.rstrip("/"))
    if web.secret_file:  # next to config.toml, like the default SQLite file, whatever the working folder
        web = replace(web, secret_file=str((base / web.secret_file).resolve()))
    inbox: InboxConfig = built["inbox"]
    inbox = replace(inbox, password=_env(environ, inbox.password_env))
    if inbox.ca_file:
        inbox = replace(inbox, ca_file=str((base / inbox.ca_file).resolve()))
    newsletter: NewsletterConfig = built["newsletter"]
    if newsletter.dkim_key_file:
        newsletter = replace(newsletter, dkim_key_file=str((base / newsletter.dkim_key_file).resolve()))
    if newsletter.templates_dir:
        newsletter = replace(newsletter, templates_dir=str((base / newsletter.templates_dir).resolve()))
    return Config(
        path=path,
        blog=built["blog"],
        feed=feed,
        newsletter=newsletter,
        question=built["question"],
        topics=topics,
        schedule=built["schedule"],
        smtp=smtp,
        store=store,
        web=web,
        inbox=inbox,
        author=built["author"],
    )


def _env(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name) or None if name else None


def _resolve_sqlite(url: str, base: Path) -> str:
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != prefix + ":memory:":
        return prefix + str((base / url[len(prefix):]).resolve())
    return url


def _build(cls: type[T], table: str, raw: Any, where: str) -> T:
    if not isinstance(raw, dict):
        raise ConfigError(where, f"[{table}] must be a table, not {type(raw).__name__}", key=table)
    hints = typing.get_type_hints(cls)
    names = {f.name.rstrip("_"): f for f in fields(cls) if f.name not in _DERIVED}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in names:
            raise ConfigError(where, f"[{table}] has unknown key '{key}'", key=f"{table}.{key}")
        f = names[key]
        label = f"[{table}] {key}"
        values[f.name] = coerce(hints[f.name], value, label, where)
        bounds = BOUNDS.get((table, key))
        problem = bounds.problem(value) if bounds else None
        if problem:
            raise ConfigError(where, f"{label} has value {value!r}, {problem}", key=f"{table}.{key}")
    for key, f in names.items():
        if f.name not in values and f.default is MISSING and f.default_factory is MISSING:
            raise ConfigError(where, f"[{table}] is missing the key '{key}'", key=f"{table}.{key}")
    return cls(**values)


def _topics(raw: Any, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict):
        raise ConfigError(where, "[topics] must be a table of label = \"Topic\"", key="topics")
    out = []
    for label, topic in raw.items():
        if not isinstance(topic, str) or not topic.strip():
            raise ConfigError(where, f"[topics] '{label}' has value {topic!r}, not a topic name")
        out.append((label, topic.strip()))
    return tuple(out)


def _check(built: dict[str, Any], where: str) -> None:
    schedule: ScheduleConfig = built["schedule"]
    parse_cron(where, schedule.cron)
    try:
        zoneinfo.ZoneInfo(schedule.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(where, f"[schedule] timezone has value {schedule.timezone!r}, not an IANA time zone like 'Europe/London'") from None
    smtp: SMTPConfig = built["smtp"]
    if smtp.security not in ("starttls", "ssl", "none"):
        raise ConfigError(where, f"[smtp] security has value {smtp.security!r}, not one of 'starttls', 'ssl', 'none'")
    _check_inbox(built["inbox"], built["newsletter"], where)
    for checks, find in ((URL_KEYS, url_problem), (ADDRESS_KEYS, address_problem)):
        for (table, key), kind in checks.items():
            f = next(f for f in fields(built[table]) if f.name.rstrip("_") == key)
            value = getattr(built[table], f.name)
            for item in value if isinstance(value, tuple) else (value,):
                left_empty = item == "" and f.default == ""  # an optional key: empty means "none"
                problem = None if left_empty else find(kind, item)
                if problem:
                    raise ConfigError(where, f"[{table}] {key} has value {item!r}, {problem}", key=f"{table}.{key}")
    nl: NewsletterConfig = built["newsletter"]
    if nl.quiet_week not in ("skip", "questions"):
        raise ConfigError(where, f"[newsletter] quiet_week has value {nl.quiet_week!r}, not one of 'skip', 'questions'")
    if "weekly" not in nl.frequencies or any(f not in ("weekly", "monthly") for f in nl.frequencies):
        raise ConfigError(where, f"[newsletter] frequencies has value {list(nl.frequencies)!r}, not 'weekly' "
                                 "with, if you offer it, 'monthly'")
    author: AuthorConfig = built["author"]
    for key, value, allowed in (("approval", author.approval, ("auto", "required")),
                                ("questions_digest", author.questions_digest, ("daily", "off"))):
        if value not in allowed:
            raise ConfigError(where, f"[author] {key} has value {value!r}, not one of "
                                     + ", ".join(repr(a) for a in allowed), key=f"author.{key}")
    prefix: str = built["question"].answer_label_prefix
    if not prefix.strip() or any(c.isdigit() or ord(c) < 32 for c in prefix) or len(prefix) > 20:
        raise ConfigError(where, f"[question] answer_label_prefix has value {prefix!r}, not a label prefix like 'Q-' "
                                 "(no digits, at most 20 characters)")
    for key, value in (("from", nl.from_), ("reply_to", nl.reply_to)):
        try:  # it is in every message: it must suit every server, SMTPUTF8 or not
            if value:
                wire_address(parseaddr(value)[1], smtputf8=False)
        except InputError as exc:
            raise ConfigError(where, f"[newsletter] {key} has value {value!r}: {exc.message}") from None


def _check_inbox(inbox: InboxConfig, newsletter: NewsletterConfig, where: str) -> None:
    """[inbox] security and folders; [newsletter] return_path short enough for its tokens."""
    if inbox.security not in ("ssl", "starttls"):
        raise ConfigError(where, f"[inbox] security has value {inbox.security!r}, not one of 'ssl', 'starttls'",
                          key="inbox.security")
    for key in ("folder", "done_folder"):
        value = getattr(inbox, key)
        if not value.strip() or any(unicodedata.category(c) == "Cc" for c in value):
            raise ConfigError(where, f"[inbox] {key} has value {value!r}, not a folder name", key=f"inbox.{key}")
    if inbox.done_folder == inbox.folder:
        raise ConfigError(where, f"[inbox] done_folder has value {inbox.done_folder!r}, the folder it reads: "
                          "handled mail must go elsewhere", key="inbox.done_folder")
    local = newsletter.return_path.rpartition("@")[0]
    if len(local) > MAX_RETURN_PATH_LOCAL:
        raise ConfigError(where, f"[newsletter] return_path has value {newsletter.return_path!r}: the part before @ "
                          f"must be at most {MAX_RETURN_PATH_LOCAL} characters, to leave room for the bounce token",
                          key="newsletter.return_path")
