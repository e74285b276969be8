"""The warnings the deliverability checks gave an issue before it went out (jobs/preflight.py),
kept with it so that the report after the send and `digest status` can show them.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("issues", sa.Column("warnings", sa.Text, nullable=False, server_default="[]"))


def downgrade() -> None:
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("warnings")
