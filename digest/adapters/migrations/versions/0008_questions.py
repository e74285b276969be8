"""Readers' questions, their askers (acknowledgement window, bounces) and the answer
notices, a ledger of their own driven like the deliveries ledger.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "questions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("email_key", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, server_default=""),
        sa.Column("text", sa.Text, nullable=False, server_default=""),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("consent_to_quote", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("display_name", sa.String(100), nullable=False, server_default=""),
        sa.Column("paraphrase", sa.Text, nullable=False, server_default=""),
        sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="CASCADE")),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("accepted_at", TS),
        sa.Column("declined_at", TS),
        sa.Column("answered_at", TS),
        sa.Column("answer_url", sa.Text, nullable=False, server_default=""),
        sa.Column("answer_post_id", sa.Text, nullable=False, server_default=""),
        sa.Column("answer_title", sa.Text, nullable=False, server_default=""),
        sa.Column("acknowledged_at", TS),
        sa.Column("noticed_at", TS),
        sa.Column("message_id", sa.String(200), unique=True),
        sa.Column("dup_key", sa.String(64), nullable=False, unique=True),
        sa.Column("featured_key", sa.String(64)),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_questions_email_key", "questions", ["email_key"])
    op.create_index("ix_questions_status", "questions", ["status"])
    op.create_table(
        "askers",
        sa.Column("email_key", sa.String(320), primary_key=True),
        sa.Column("acknowledged_at", TS),
        sa.Column("bounced_at", TS),
    )
    op.create_table(
        "notices",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("question_id", sa.Integer, sa.ForeignKey("questions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_code", sa.Integer),
        sa.Column("last_reply", sa.String(500), nullable=False, server_default=""),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("claimed_by", sa.String(100), nullable=False, server_default=""),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("first_attempt_at", TS),
        sa.UniqueConstraint("question_id", name="uq_notices_question"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_notices_due", "notices", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("notices")
    op.drop_table("askers")
    op.drop_index("ix_questions_status", "questions")
    op.drop_index("ix_questions_email_key", "questions")
    op.drop_table("questions")
