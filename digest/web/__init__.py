"""The web front door of `digest serve`: subscribe, confirm, unsubscribe, preferences,
the archive. May import the core and the store adapters, never SMTP: mail goes out
through the hooks it is given."""

from .app import create_app

__all__ = ["create_app"]
