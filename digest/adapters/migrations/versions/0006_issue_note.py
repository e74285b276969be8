"""The editor's note of an issue (digest send --note), kept so that a resumed send renders
the same mail as the first part of it did.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("issues", sa.Column("note", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("note")
