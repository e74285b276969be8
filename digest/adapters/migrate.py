"""Runs the alembic migrations on the store's database. Adapter: talks to the database.

On SQLite the whole upgrade is one transaction (pysqlite would only begin one at the
first INSERT, leaving the DDL before it committed), taken with BEGIN IMMEDIATE so that two
processes opening an old database at once upgrade it once. Table rebuilds (batch mode:
create, copy, drop, rename) run with foreign keys off, as SQLite's table-rebuild procedure
asks: with them on, dropping the old table would fire ON DELETE actions on every row that
references it. The references are checked before the commit instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from ..core.errors import StoreError

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

HEAD = "head"
_VERSIONS = Path(__file__).resolve().parent / "migrations" / "versions"


def alembic_config() -> AlembicConfig:
    """Alembic's configuration for our migrations (no alembic.ini: the location is fixed)."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "digest.adapters:migrations")
    return cfg


def newest_revision() -> str:
    """The head revision, without importing alembic (a third of a short command's start):
    each migration is a file NNNN_what.py whose revision is "NNNN", one after the other
    (tests/test_store.py holds this to alembic's own reading of the folder)."""
    return max(p.name[:4] for p in _VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at; None for a database alembic never touched."""
    try:
        value = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except (sa.exc.OperationalError, sa.exc.ProgrammingError):  # no such table (yet)
        value = None
    conn.rollback()
    return None if value is None else str(value)


def migrate(engine: Engine, revision: str = HEAD) -> None:
    """Bring the database's schema to `revision` (default: the newest). Alembic is loaded
    only when the schema must change. An empty database gets the newest schema at once,
    from schema.py, stamped with the head revision (alembic's advice for new databases:
    tests/test_store.py holds the two schemas equal), rather than every step since the first."""
    target = newest_revision() if revision == HEAD else revision
    with engine.connect() as conn:
        if current_revision(conn) == target:
            return  # the usual case: no table scans, no pragma changes, no alembic
        if revision == HEAD and (_create_if_empty(conn, target) or current_revision(conn) == target):
            return  # made now, or by another process while this one waited for it
        cfg = alembic_config()
        if conn.dialect.name == "sqlite":
            _migrate_sqlite(conn, cfg, revision)
        else:
            with conn.begin():
                _upgrade(conn, cfg, revision)


_VERSION_TABLE = sa.Table(  # alembic's own bookkeeping table, as alembic makes it
    "alembic_version", sa.MetaData(),
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def _create_if_empty(conn: Connection, target: str) -> bool:
    """Create the newest schema in a database with no tables; False when it has some. Two
    processes opening one new database at once create it once: the second waits for the
    first (SQLite's write lock, a PostgreSQL advisory lock) and then finds it made."""
    from .schema import metadata

    with conn.begin():
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7294061)")  # any fixed key of ours
        if sa.inspect(conn).get_table_names():
            return False
        metadata.create_all(conn, checkfirst=False)
        _VERSION_TABLE.create(conn)
        conn.execute(_VERSION_TABLE.insert().values(version_num=target))
    return True


def _upgrade(conn: Connection, cfg: AlembicConfig, revision: str) -> None:
    from alembic import command

    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


def _migrate_sqlite(conn: Connection, cfg: AlembicConfig, revision: str) -> None:
    was_on = bool(conn.exec_driver_sql("PRAGMA foreign_keys").scalar())
    _foreign_keys(conn, on=False)
    try:
        with conn.begin():
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            before = _dangling(conn)
            _upgrade(conn, cfg, revision)
            after = _dangling(conn)
            if after > before:  # references broken by hand before (sqlite3's shell has keys off) are not ours
                raise StoreError(f"the schema upgrade to {revision} would break {after - before} references "
                                 "between tables; the database was left as it was")
    finally:
        _foreign_keys(conn, on=was_on)


def _dangling(conn: Connection) -> int:
    return len(conn.exec_driver_sql("PRAGMA foreign_key_check").all())


def _foreign_keys(conn: Connection, *, on: bool) -> None:
    # A no-op inside a transaction: commit whatever SQLAlchemy's autobegin opened first.
    conn.commit()
    conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    conn.commit()
