"""An asker who reported an acknowledgement or an answer notice as spam: nothing more
goes to the address.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("askers", sa.Column("complained_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("askers") as batch:
        batch.drop_column("complained_at")
