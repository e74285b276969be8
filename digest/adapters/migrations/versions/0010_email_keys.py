"""Email keys fold only what mail systems fold: ASCII case in the local part, the domain in
lower-case A-labels. They were str.casefold() of the address, which also merged "straße@"
with "strasse@" and "ﬁ@" with "fi@". Keys of ASCII addresses do not change; the others
are recomputed here from the addresses kept beside them (subscribers, questions, and the
askers those questions name). The new keys merge less than the old ones, so two rows never
meet on one key. The rule is copied, not imported: a migration stays what it was when the
code moves on.

Revision ID: 0010
Revises: 0009
"""

from typing import Any

import idna
import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
_PARKED = "#0010 "  # a prefix no key has (a space): keys move in two steps, so a swap never meets the unique index


def _key(email: str) -> str:
    local, _, domain = email.rpartition("@")
    try:
        domain = domain.lower() if domain.isascii() else idna.encode(domain, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        domain = domain.casefold()  # cannot happen for a stored address; keep the row as it was
    return f"{local.translate(_LOWER)}@{domain}"


def _rekey(conn: Any, table: sa.Table, key_column: str, pk: str, email_column: str) -> dict[str, str]:
    """Recompute the non-ASCII keys of `table`; the old -> new keys that changed."""
    key, email, ident = table.c[key_column], table.c[email_column], table.c[pk]
    moved: dict[str, str] = {}
    for row in conn.execute(sa.select(ident, key, email)).all():
        old, address = row[1], row[2]
        if old.isascii() and address.isascii():
            continue
        new = _key(address)
        if new != old:
            moved[old] = new
            conn.execute(table.update().where(ident == row[0]).values({key_column: _PARKED + new}))
    if moved:
        conn.execute(table.update().where(key.startswith(_PARKED, autoescape=False))
                     .values({key_column: sa.func.substr(key, len(_PARKED) + 1)}))
    return moved


def upgrade() -> None:
    conn = op.get_bind()
    meta = sa.MetaData()
    subscribers = sa.Table("subscribers", meta, autoload_with=conn)
    questions = sa.Table("questions", meta, autoload_with=conn)
    askers = sa.Table("askers", meta, autoload_with=conn)
    _rekey(conn, subscribers, "email_key", "id", "email")
    moved = _rekey(conn, questions, "email_key", "id", "email")
    for old, new in moved.items():
        if conn.execute(sa.select(askers.c.email_key).where(askers.c.email_key == new)).first() is None:
            conn.execute(askers.update().where(askers.c.email_key == old).values(email_key=new))


def downgrade() -> None:
    pass  # the old keys merged different mailboxes: nothing to go back to
