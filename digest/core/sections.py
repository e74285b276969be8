"""The sections of config.toml as frozen dataclasses, one per table, and the views the
jobs take (Publication). Pure core: values only; reading and checking the file is
config.py's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from .errors import ConfigError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CRON = re.compile(r"^(?P<day>[a-z]{3})[a-z]*\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?$")


@dataclass(frozen=True)
class BlogConfig:
    name: str
    url: str
    contact_url: str = ""
    postal_address: str = ""


@dataclass(frozen=True)
class FeedConfig:
    url: str
    timeout_seconds: float = 10.0
    deadline_seconds: float = 60.0
    parse_seconds: float = 60.0  # reading what was fetched: feedparser, then each post's sanitising
    user_agent: str = "blog-digest/0.1"
    max_bytes: int = 10_000_000
    max_pages: int = 20
    page_size: int = 25


@dataclass(frozen=True)
class NewsletterConfig:
    from_: str
    reply_to: str = ""
    subject: str = "{{ headline }}"
    max_posts: int = 20
    max_sections: int = 6
    fallback_topic: str = "More from the blog"
    excerpt_chars: int = 220
    first_issue_days: int = 7
    thumbnail_width: int = 240
    preheader: str = ""
    templates_dir: str = ""
    list_id: str = ""
    unsubscribe_mailto: str = ""
    dkim_selector: str = ""
    dkim_key_file: str = ""
    return_path: str = ""
    quiet_week: str = "skip"  # a week with no new post: "skip", or "questions" (an issue of answered questions)
    frequencies: tuple[str, ...] = ("weekly", "monthly")  # what readers may choose (core/audience.py)


@dataclass(frozen=True)
class QuestionConfig:
    title: str = "Have a question?"
    text: str = ""
    url: str = ""
    email: str = ""
    labels: tuple[str, ...] = ()
    answer_label_prefix: str = "Q-"
    keep_days: int = 90
    acknowledge: bool = True
    acknowledge_window_hours: float = 24.0
    acknowledge_per_hour: int = 30  # to all addresses together: forged mail must not make us a spam cannon


@dataclass(frozen=True)
class ScheduleConfig:
    cron: str = "mon 07:00"
    timezone: str = "UTC"
    max_late_hours: float = 48.0

    @property
    def weekday(self) -> int:
        """Monday is 0, as datetime.weekday() counts."""
        return DAYS.index(parse_cron("", self.cron)[0])

    @property
    def time_of_day(self) -> tuple[int, int, int]:
        """(hour, minute, second) of the weekly send."""
        return parse_cron("", self.cron)[1:]


@dataclass(frozen=True)
class SMTPConfig:
    host: str = "localhost"
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password_env: str = ""
    timeout_seconds: float = 30.0
    data_timeout_seconds: float = 600.0
    max_per_second: float = 20.0
    connections: int = 1
    ca_file: str = ""
    retry_window_minutes: float = 15.0  # covers the retries at 1 and 6 minutes: past postgrey's 300 s
    retry_interval_minutes: float = 5.0
    give_up_hours: float = 72.0
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class StoreConfig:
    url: str = "sqlite:///subscribers/subscribers.db"


@dataclass(frozen=True)
class WebConfig:
    base_url: str = "http://localhost:8000"
    secret_env: str = "DIGEST_SECRET"
    secret_file: str = "subscribers/secret"
    allowed_origins: tuple[str, ...] = ()
    trusted_proxy_header: str = ""
    confirm_hours: float = 48.0
    confirm_resend_minutes: float = 60.0
    confirm_per_hour: int = 30  # confirmation mails to all addresses together: no stranger's spam cannon
    preferences_days: float = 60.0  # how long the settings link of an issue works
    ip_limit_per_hour: int = 20
    consent_text: str = "I agree to receive the weekly newsletter by email."
    consent_version: str = "1"
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class InboxConfig:
    """The IMAP mailbox that receives the mail that comes back (an empty host: none)."""

    host: str = ""
    port: int = 993
    security: str = "ssl"
    username: str = ""
    password_env: str = "DIGEST_IMAP_PASSWORD"
    folder: str = "INBOX"
    done_folder: str = "digest-done"
    poll_minutes: float = 10.0
    max_message_bytes: int = 2_000_000
    bounce_after: int = 3
    timeout_seconds: float = 30.0
    ca_file: str = ""
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AuthorConfig:
    """The author's desk: proofs, the questions mail and reports (an empty email: none)."""

    email: str = ""
    approval: str = "auto"        # "auto": the issue goes unless held | "required": only once approved
    proof_hours: float = 24.0     # hours before the weekly slot the proof goes out
    report: bool = True           # a report after each send
    questions_digest: str = "daily"  # "daily" | "off"


@dataclass(frozen=True)
class Publication:
    """The blog and its newsletter: where the posts come from (the feed) and what the mails
    say (the newsletter, the question box, the topics, the schedule readers are told, the web
    app's address). What the jobs that build and render mail read, and no mail server,
    password or secret. `source` names the file it came from, for error lines."""

    blog: BlogConfig
    feed: FeedConfig
    newsletter: NewsletterConfig
    question: QuestionConfig
    topics: tuple[tuple[str, str], ...]
    schedule: ScheduleConfig
    base_url: str
    confirm_hours: float  # [web]'s, as are the two above: Config.publication is the one place it is made
    preferences_days: float
    source: str


@dataclass(frozen=True)
class Config:
    """The whole of config.toml, checked (config.py reads it). The composition root
    (cli/wiring.py) and the web app take it; a job takes the sections it reads."""

    path: Path
    blog: BlogConfig
    feed: FeedConfig
    newsletter: NewsletterConfig
    question: QuestionConfig
    topics: tuple[tuple[str, str], ...]
    schedule: ScheduleConfig
    smtp: SMTPConfig
    store: StoreConfig
    web: WebConfig
    inbox: InboxConfig = field(default_factory=InboxConfig)
    author: AuthorConfig = field(default_factory=AuthorConfig)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @cached_property
    def publication(self) -> Publication:
        """The sections the mails are built from, without the servers and secrets."""
        return Publication(self.blog, self.feed, self.newsletter, self.question, self.topics, self.schedule,
                           base_url=self.web.base_url, confirm_hours=self.web.confirm_hours,
                           preferences_days=self.web.preferences_days, source=str(self.path))


def parse_cron(where: str, cron: str) -> tuple[str, int, int, int]:
    """[schedule] cron ("mon 07:00", "Monday 7:00:30") as (day, hour, minute, second);
    ConfigError, naming the file `where`, when it is not a day and a time."""
    m = _CRON.match(cron.strip().lower())
    if not m or m.group("day") not in DAYS or not cron.strip().lower().startswith(m.group("day")):
        raise ConfigError(where, f"[schedule] cron has value {cron!r}, not a day and a time like 'mon 07:00'")
    full = cron.strip().lower().split()[0]
    long_names = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    if full not in DAYS and full not in long_names:
        raise ConfigError(where, f"[schedule] cron has value {cron!r}: '{full}' is not a day name")
    hour, minute, second = int(m.group("hour")), int(m.group("minute")), int(m.group("second") or 0)
    if hour > 23 or minute > 59 or second > 59:
        raise ConfigError(where, f"[schedule] cron has value {cron!r}: no such time of day")
    return m.group("day"), hour, minute, second
