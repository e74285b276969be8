"""Issues, the delivery ledger, the senders' heartbeats and the feed's state.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "issues",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(64), nullable=False, unique=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("cutoff", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("posts", sa.Text, nullable=False),
        sa.Column("html", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("issue_id", sa.Integer, sa.ForeignKey("issues.id", ondelete="CASCADE"), nullable=False),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL")),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_code", sa.Integer),
        sa.Column("last_reply", sa.String(500), nullable=False, server_default=""),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("claimed_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("issue_id", "subscriber_id", name="uq_deliveries_issue_subscriber"),
    )
    # Claims read pending rows in id order, and due deferred rows by time: one index each.
    op.create_index("ix_deliveries_queue", "deliveries", ["issue_id", "status", "id"])
    op.create_index("ix_deliveries_due", "deliveries", ["issue_id", "status", "next_attempt_at"])
    op.create_table(
        "senders",
        sa.Column("id", sa.String(100), primary_key=True),
        sa.Column("host", sa.String(200), nullable=False),
        sa.Column("pid", sa.Integer, nullable=False),
        sa.Column("heartbeat_at", TS, nullable=False),
    )
    op.create_table(
        "feed_state",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("etag", sa.Text),
        sa.Column("last_modified", sa.Text),
        sa.Column("moved_to", sa.Text),
        sa.Column("checked_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("feed_state")
    op.drop_table("senders")
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.drop_index("ix_deliveries_queue", table_name="deliveries")
    op.drop_table("deliveries")
    op.drop_table("issues")
