"""Runs the alembic migrations on the store's database. Adapter: talks to the database.

On SQLite the whole upgrade is one transaction (pysqlite would only begin one at the
first INSERT, leaving the DDL before it committed), taken with BEGIN IMMEDIATE so that two
processes opening an old database at once upgrade it once. Table rebuilds (batch mode:
create, copy, drop, rename) run with foreign keys off, as SQLite's table-rebuild procedure
asks: with them on, dropping the old table would fire ON DELETE actions on every row that
references it. The references are checked before the commit instead.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from ..core.errors import StoreError

HEAD = "head"


def alembic_config() -> AlembicConfig:
    """Alembic's configuration for our migrations (no alembic.ini: the location is fixed)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", "digest.adapters:migrations")
    return cfg


def migrate(engine: Engine, revision: str = HEAD) -> None:
    """Bring the database's schema to `revision` (default: the newest)."""
    cfg = alembic_config()
    target = ScriptDirectory.from_config(cfg).get_current_head() if revision == HEAD else revision
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
        if current == target:
            return  # the usual case: no table scans, no pragma changes
        if conn.dialect.name == "sqlite":
            _migrate_sqlite(conn, cfg, revision)
        else:
            with conn.begin():
                _upgrade(conn, cfg, revision)


def _upgrade(conn: Connection, cfg: AlembicConfig, revision: str) -> None:
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
