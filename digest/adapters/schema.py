"""The database tables, as SQLAlchemy Core metadata (the current schema). Adapter-side:
store.py and ledger.py query through it; the migrations carry their own frozen copies.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on SQLite (naive) and PostgreSQL alike."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


metadata = sa.MetaData()

# The largest id an Integer column holds on both databases (PostgreSQL's integer; SQLite's
# goes to 2**63 - 1): a larger one names no row, and the drivers raise on it.
MAX_ID = 2**31 - 1

subscribers = sa.Table(
    "subscribers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("email_key", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("topics", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("consent_at", UTCDateTime),
    sa.Column("consent_method", sa.String(20), nullable=False, server_default=""),
    sa.Column("consent_ip", sa.String(64), nullable=False, server_default=""),
    sa.Column("consent_user_agent", sa.String(300), nullable=False, server_default=""),
    sa.Column("consent_version", sa.String(40), nullable=False, server_default=""),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("confirmed_how", sa.String(20), nullable=False, server_default=""),  # link, author or import
    sa.Column("unsubscribed_at", UTCDateTime),
    sa.Column("unsubscribed_how", sa.String(20), nullable=False, server_default=""),
    sa.Column("confirm_nonce", sa.String(64), nullable=False, server_default=""),
    sa.Column("confirm_sent_at", UTCDateTime),
    # Readers' choices (migration 0011): how often, a pause and why, a new address waiting for
    # its confirmation, and what the first issue after a pause tells them they missed.
    sa.Column("frequency", sa.String(10), nullable=False, server_default="weekly"),  # weekly, monthly
    sa.Column("pause_reason", sa.String(10), nullable=False, server_default=""),  # "", weeks, job
    sa.Column("paused_at", UTCDateTime),
    sa.Column("paused_until", UTCDateTime),  # None with "job": until they come back
    sa.Column("away_issues", sa.Integer, nullable=False, server_default="0"),  # issues skipped while paused
    sa.Column("away_since", UTCDateTime),
    sa.Column("away_issue", sa.Integer),  # the issue whose copy says what they missed
    sa.Column("new_email", sa.String(320), nullable=False, server_default=""),
    sa.Column("new_email_nonce", sa.String(64), nullable=False, server_default=""),
    sa.Column("new_email_at", UTCDateTime),
    sa.Index("ix_subscribers_status", "status"),
    # Never reuse an id: links to a removed subscriber must not reach the next one (0003).
    sqlite_autoincrement=True,
)

rate_events = sa.Table(
    "rate_events", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("bucket", sa.String(20), nullable=False),
    sa.Column("key", sa.String(320), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_rate_events_lookup", "bucket", "key", "at"),
)

issues = sa.Table(
    "issues", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),  # sending, done
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("cutoff", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("posts", sa.Text, nullable=False),  # JSON: the Post records, so a resumed send renders the same
    sa.Column("html", sa.Text, nullable=False),   # the full issue as sent, without anyone's links (the archive)
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),  # the editor's Markdown note (digest send --note)
    sa.Column("kind", sa.String(10), nullable=False, server_default="weekly"),  # weekly, monthly (0011)
    # JSON: the deliverability checks' warnings when it was recorded (jobs/preflight.py; 0013)
    sa.Column("warnings", sa.Text, nullable=False, server_default="[]"),
)

def _attempt_columns() -> list[sa.Column[Any]]:
    """The columns of a row of a sending ledger (deliveries, notices): its status (core/models.py
    DeliveryStatus: pending, sending, sent, deferred, failed, in_doubt, skipped), its attempts
    and the server's last reply, its Message-ID and who holds it. New objects for each table."""
    return [
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("last_code", sa.Integer),
        sa.Column("last_reply", sa.String(500), nullable=False, server_default=""),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("claimed_by", sa.String(100), nullable=False, server_default=""),
    ]


deliveries = sa.Table(
    "deliveries", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id", ondelete="CASCADE"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL")),
    *_attempt_columns(),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("first_attempt_at", UTCDateTime),  # give_up_hours counts from here (migration 0005)
    sa.UniqueConstraint("issue_id", "subscriber_id", name="uq_deliveries_issue_subscriber"),
    sa.Index("ix_deliveries_queue", "issue_id", "status", "id"),
    sa.Index("ix_deliveries_due", "issue_id", "status", "next_attempt_at"),
)

senders = sa.Table(
    "senders", metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("host", sa.String(200), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
)

feed_state = sa.Table(
    "feed_state", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("etag", sa.Text),
    sa.Column("last_modified", sa.Text),
    sa.Column("moved_to", sa.Text),
    sa.Column("checked_at", UTCDateTime, nullable=False),
)

# The inbox (0005): each IMAP message read, keyed by its folder, UIDVALIDITY and UID, with
# its Message-ID; claimed by one reader before it is handled, marked handled in the same
# transaction as what handling it changed, and only then moved (adapters/inbox_ledger.py).
inbox_messages = sa.Table(
    "inbox_messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("folder", sa.String(200), nullable=False),
    sa.Column("uidvalidity", sa.BigInteger, nullable=False),
    sa.Column("uid", sa.BigInteger, nullable=False),
    sa.Column("message_id", sa.String(500), nullable=False, server_default=""),
    sa.Column("state", sa.String(20), nullable=False),  # claimed, handled
    sa.Column("kind", sa.String(20), nullable=False, server_default=""),
    sa.Column("outcome", sa.String(500), nullable=False, server_default=""),
    sa.Column("keep", sa.Boolean, nullable=False, server_default=sa.false()),  # left in the folder (too large)
    sa.Column("claimed_by", sa.String(100), nullable=False, server_default=""),
    sa.Column("claimed_at", UTCDateTime, nullable=False),
    sa.Column("handled_at", UTCDateTime),
    sa.UniqueConstraint("folder", "uidvalidity", "uid", name="uq_inbox_messages_uid"),
    sa.Index("ix_inbox_messages_message_id", "message_id"),
    sa.Index("ix_inbox_messages_handled", "handled_at"),
)

# What a bounce, complaint or unsubscribe mail did to one subscriber: hard and soft
# bounces (soft ones counted per issue toward [inbox] bounce_after), complaints, unsubscribes.
inbox_returns = sa.Table(
    "inbox_returns", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("message_row", sa.Integer, sa.ForeignKey("inbox_messages.id", ondelete="CASCADE"), nullable=False),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL")),
    sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id", ondelete="SET NULL")),
    sa.Column("kind", sa.String(20), nullable=False),  # hard, soft, complaint, unsubscribe
    sa.Column("status", sa.String(20), nullable=False, server_default=""),
    sa.Column("changed", sa.Boolean, nullable=False),  # it changed the subscriber's status
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index("ix_inbox_returns_subscriber", "subscriber_id", "kind", "issue_id"),
    sa.Index("ix_inbox_returns_at", "at"),
)

# Whom a bounce is about, when it names only an address, and the streak of soft bounces:
# both look a subscriber's deliveries up (the unique key leads with the issue).
sa.Index("ix_deliveries_subscriber", deliveries.c.subscriber_id)

# When each folder was last read, and how that went.
inbox_reads = sa.Table(
    "inbox_reads", metadata,
    sa.Column("folder", sa.String(200), primary_key=True),
    sa.Column("read_at", UTCDateTime, nullable=False),
    sa.Column("outcome", sa.String(500), nullable=False),
)

# ---- readers' questions (migration 0006) ----

questions = sa.Table(
    "questions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False),       # the address that asked: notices go there only
    sa.Column("email_key", sa.String(320), nullable=False),
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=False, server_default=""),  # emptied [question] keep_days after the end
    sa.Column("source", sa.String(20), nullable=False),      # web, contact-form, mail, reply
    sa.Column("status", sa.String(20), nullable=False),      # new, accepted, answered, declined
    sa.Column("consent_to_quote", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("display_name", sa.String(100), nullable=False, server_default=""),
    sa.Column("paraphrase", sa.Text, nullable=False, server_default=""),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE")),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("accepted_at", UTCDateTime),
    sa.Column("declined_at", UTCDateTime),
    sa.Column("answered_at", UTCDateTime),
    sa.Column("answer_url", sa.Text, nullable=False, server_default=""),
    sa.Column("answer_post_id", sa.Text, nullable=False, server_default=""),
    sa.Column("answer_title", sa.Text, nullable=False, server_default=""),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("noticed_at", UTCDateTime),
    sa.Column("message_id", sa.String(200), unique=True),    # the intake mail's: the same mail read twice is one question
    sa.Column("dup_key", sa.String(64), nullable=False, unique=True),  # address + normalised text
    sa.Column("featured_key", sa.String(64)),                # the key of the issue that features the answer
    sa.Index("ix_questions_email_key", "email_key"),
    sa.Index("ix_questions_status", "status"),
    # Never reuse an id: labels like Q-17 on old posts must not answer the next question 17.
    sqlite_autoincrement=True,
)

askers = sa.Table(
    "askers", metadata,
    sa.Column("email_key", sa.String(320), primary_key=True),
    sa.Column("acknowledged_at", UTCDateTime),  # the last acknowledgement: one per [question] acknowledge_window_hours
    sa.Column("bounced_at", UTCDateTime),       # a mail to the address was refused for good: nothing more goes there
    sa.Column("complained_at", UTCDateTime),    # an acknowledgement or notice was reported as spam: nothing more goes there
)

notices = sa.Table(
    "notices", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("question_id", sa.Integer, sa.ForeignKey("questions.id", ondelete="CASCADE"), nullable=False),
    *_attempt_columns(),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("first_attempt_at", UTCDateTime),
    sa.UniqueConstraint("question_id", name="uq_notices_question"),  # one notice per question, ever
    sa.Index("ix_notices_due", "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)


# ---- readers' choices (migration 0011) ----

# Every choice a reader made, when: frequency, pause (weeks, job), resume, address. The
# author's report counts the "job" rows: readers who got the job, as a number.
reader_choices = sa.Table(
    "reader_choices", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("value", sa.String(700), nullable=False, server_default=""),
    sa.Column("how", sa.String(20), nullable=False, server_default=""),  # web, unsubscribe-page, cli
    sa.Index("ix_reader_choices_subscriber", "subscriber_id"),
    sa.Index("ix_reader_choices_kind", "kind", "at"),
)

# ---- the author's desk (migration 0012) ----

author_slots = sa.Table(
    "author_slots", metadata,
    sa.Column("slot", UTCDateTime, primary_key=True),        # the weekly send instant the decisions are for
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),  # +1 at each change: a new proof follows
    sa.Column("proof_claimed", sa.Integer, nullable=False, server_default="0"),  # the version a proof was begun for
    sa.Column("proof_sent", sa.Integer, nullable=False, server_default="0"),     # ... and the one it was sent for
    sa.Column("proof_sent_at", UTCDateTime),
    sa.Column("held_at", UTCDateTime),
    sa.Column("hold_reason", sa.Text, nullable=False, server_default=""),
    sa.Column("approved_at", UTCDateTime),
    sa.Column("note", sa.Text, nullable=False, server_default=""),  # Markdown, as --note
    sa.Column("outcome", sa.String(20), nullable=False, server_default=""),  # held, unapproved, sent
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

author_mails = sa.Table(
    "author_mails", metadata,
    sa.Column("kind", sa.String(20), primary_key=True),   # report (ref: the issue), questions (ref: the day)
    sa.Column("ref", sa.String(40), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),   # sending (claimed before it goes), sent, failed
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime),
)


def dialect_insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The INSERT of the connection's database, which knows ON CONFLICT (PostgreSQL or SQLite)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
