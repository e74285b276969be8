"""Readers' choices: how often (weekly, monthly), a pause and why, a new address waiting
for its confirmation, what a reader missed while paused; the kind of each issue (weekly,
monthly); and the trail of choices (reader_choices).

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


TS = sa.DateTime(timezone=True)


_SUBSCRIBER_COLUMNS = (
    ("frequency", lambda: sa.Column("frequency", sa.String(10), nullable=False, server_default="weekly")),
    ("pause_reason", lambda: sa.Column("pause_reason", sa.String(10), nullable=False, server_default="")),
    ("paused_at", lambda: sa.Column("paused_at", TS)),
    ("paused_until", lambda: sa.Column("paused_until", TS)),
    ("away_issues", lambda: sa.Column("away_issues", sa.Integer, nullable=False, server_default="0")),
    ("away_since", lambda: sa.Column("away_since", TS)),
    ("away_issue", lambda: sa.Column("away_issue", sa.Integer)),
    ("new_email", lambda: sa.Column("new_email", sa.String(320), nullable=False, server_default="")),
    ("new_email_nonce", lambda: sa.Column("new_email_nonce", sa.String(64), nullable=False, server_default="")),
    ("new_email_at", lambda: sa.Column("new_email_at", TS)),
)


def upgrade() -> None:
    for _, column in _SUBSCRIBER_COLUMNS:
        op.add_column("subscribers", column())
    op.add_column("issues", sa.Column("kind", sa.String(10), nullable=False, server_default="weekly"))
    op.create_table(
        "reader_choices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.String(700), nullable=False, server_default=""),
        sa.Column("how", sa.String(20), nullable=False, server_default=""),
    )
    op.create_index("ix_reader_choices_subscriber", "reader_choices", ["subscriber_id"])
    op.create_index("ix_reader_choices_kind", "reader_choices", ["kind", "at"])


def downgrade() -> None:
    op.drop_index("ix_reader_choices_kind", "reader_choices")
    op.drop_index("ix_reader_choices_subscriber", "reader_choices")
    op.drop_table("reader_choices")
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("subscribers") as batch:
        for name, _ in reversed(_SUBSCRIBER_COLUMNS):
            batch.drop_column(name)
