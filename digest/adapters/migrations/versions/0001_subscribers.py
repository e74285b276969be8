"""Subscribers with their consent record, and the rate-limit events of the web form.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("topics", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("consent_at", TS),
        sa.Column("consent_method", sa.String(20), nullable=False, server_default=""),
        sa.Column("consent_ip", sa.String(64), nullable=False, server_default=""),
        sa.Column("consent_user_agent", sa.String(300), nullable=False, server_default=""),
        sa.Column("consent_version", sa.String(40), nullable=False, server_default=""),
        sa.Column("confirmed_at", TS),
        sa.Column("unsubscribed_at", TS),
        sa.Column("unsubscribed_how", sa.String(20), nullable=False, server_default=""),
        sa.Column("confirm_nonce", sa.String(64), nullable=False, server_default=""),
        sa.Column("confirm_sent_at", TS),
    )
    op.create_index("ix_subscribers_status", "subscribers", ["status"])
    op.create_table(
        "rate_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.String(20), nullable=False),
        sa.Column("key", sa.String(320), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_rate_events_lookup", "rate_events", ["bucket", "key", "at"])
