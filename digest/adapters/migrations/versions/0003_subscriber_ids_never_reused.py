"""Subscriber ids are never reused: a removed subscriber's links (unsubscribe and
preferences never expire) must not act on whoever is added next.

SQLite without AUTOINCREMENT hands out max(id) + 1, so deleting the newest subscriber
gives the next one the same id; AUTOINCREMENT needs the table rebuilt (batch mode), with
the same columns, constraints and index. PostgreSQL's sequences never go back: nothing
to do there.

The rebuild drops and renames `subscribers`, which `deliveries.subscriber_id` references
with ON DELETE SET NULL: with foreign keys on, the drop would null every ledger row's
subscriber. The store runs SQLite migrations with foreign keys off and checks them after
(store.migrate), as SQLite's own table-rebuild procedure asks.

Ids deleted before this upgrade from the top of the range leave no trace, so the sequence
starts at the highest id still present.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("subscribers", recreate="always",
                              table_kwargs={"sqlite_autoincrement": True}):
        pass  # no column changes: the rebuild itself, with AUTOINCREMENT, is the change


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("subscribers", recreate="always",
                              table_kwargs={"sqlite_autoincrement": False}):
        pass
