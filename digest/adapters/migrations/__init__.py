"""Alembic migrations, applied automatically when the store opens."""
