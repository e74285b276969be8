"""The time of each delivery's first attempt: a message still deferred [smtp] give_up_hours
after it is failed with its last reply.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("first_attempt_at", sa.DateTime(timezone=True)))
    # Rows already tried: their first attempt is unknown, their last one (updated_at) is the
    # nearest we have, and it can only make the give-up come later, never earlier.
    op.execute("UPDATE deliveries SET first_attempt_at = updated_at WHERE attempts > 0")


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("first_attempt_at")
