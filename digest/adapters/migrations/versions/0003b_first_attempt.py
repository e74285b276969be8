"""The time of each delivery's first attempt: a message still deferred [smtp] give_up_hours
after it is failed with its last reply.

Revision ID: 0003b
Revises: 0002

Named 0003b because another branch adds its own 0003; whoever merges the two re-points
down_revision so that the chain stays one line.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003b"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("first_attempt_at", sa.DateTime(timezone=True)))
    # Rows already tried: their first attempt is unknown, their last one (updated_at) is the
    # nearest we have, and it can only make the give-up come later, never earlier.
    op.execute("UPDATE deliveries SET first_attempt_at = updated_at WHERE attempts > 0")
