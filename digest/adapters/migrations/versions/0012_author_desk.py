"""The author's decisions on each upcoming issue, keyed by its weekly slot (proof sent,
held, approved, the note), and the single mails the author gets (a report per issue, the
questions mail), recorded before they go so that a kill sends none of them twice.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "author_slots",
        sa.Column("slot", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("proof_claimed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("proof_sent", sa.Integer, nullable=False, server_default="0"),
        sa.Column("proof_sent_at", sa.DateTime(timezone=True)),
        sa.Column("held_at", sa.DateTime(timezone=True)),
        sa.Column("hold_reason", sa.Text, nullable=False, server_default=""),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("outcome", sa.String(20), nullable=False, server_default=""),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "author_mails",
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("ref", sa.String(40), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("author_mails")
    op.drop_table("author_slots")
