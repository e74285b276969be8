"""The inbox's bookkeeping: each IMAP message read (claimed, then handled, keyed by
folder, UIDVALIDITY and UID, with its Message-ID), what bounces, complaints and
unsubscribe mails did to subscribers, and when each folder was last read; an index of
deliveries by subscriber.

New tables and an index only: nothing to rebuild on SQLite, nothing to copy.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox_messages",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("folder", sa.String(200), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger, nullable=False),
        sa.Column("uid", sa.BigInteger, nullable=False),
        sa.Column("message_id", sa.String(500), nullable=False, server_default=""),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False, server_default=""),
        sa.Column("outcome", sa.String(500), nullable=False, server_default=""),
        sa.Column("keep", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("claimed_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("claimed_at", TS, nullable=False),
        sa.Column("handled_at", TS),
        sa.UniqueConstraint("folder", "uidvalidity", "uid", name="uq_inbox_messages_uid"),
    )
    # A message seen again under a new UIDVALIDITY is found by its Message-ID.
    op.create_index("ix_inbox_messages_message_id", "inbox_messages", ["message_id"])
    op.create_index("ix_inbox_messages_handled", "inbox_messages", ["handled_at"])
    op.create_table(
        "inbox_returns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("message_row", sa.Integer, sa.ForeignKey("inbox_messages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL")),
        sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id", ondelete="SET NULL")),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default=""),
        sa.Column("changed", sa.Boolean, nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    # Soft bounces are counted per subscriber and issue; `digest status` counts the last week.
    op.create_index("ix_inbox_returns_subscriber", "inbox_returns", ["subscriber_id", "kind", "issue_id"])
    op.create_index("ix_inbox_returns_at", "inbox_returns", ["at"])
    # Bounces naming only an address, and the soft-bounce streak, look deliveries up by subscriber.
    op.create_index("ix_deliveries_subscriber", "deliveries", ["subscriber_id"])
    op.create_table(
        "inbox_reads",
        sa.Column("folder", sa.String(200), primary_key=True),
        sa.Column("read_at", TS, nullable=False),
        sa.Column("outcome", sa.String(500), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("inbox_reads")
    op.drop_index("ix_deliveries_subscriber", table_name="deliveries")
    op.drop_index("ix_inbox_returns_at", table_name="inbox_returns")
    op.drop_index("ix_inbox_returns_subscriber", table_name="inbox_returns")
    op.drop_table("inbox_returns")
    op.drop_index("ix_inbox_messages_handled", table_name="inbox_messages")
    op.drop_index("ix_inbox_messages_message_id", table_name="inbox_messages")
    op.drop_table("inbox_messages")
