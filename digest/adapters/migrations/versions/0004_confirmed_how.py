"""How each subscriber was confirmed: "link" (they clicked the confirmation link), "author"
(the blog's author confirmed them by hand), "import" (imported as already agreeing).
Rows confirmed before this revision keep "" (not recorded).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("confirmed_how", sa.String(20), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("confirmed_how")
