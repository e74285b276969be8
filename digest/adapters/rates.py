"""Taking back what the rate limits counted for a mail that never left. Adapter: writes the
rate_events table through the store's transactions (Store.hit_rate counts them).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from .schema import rate_events
from .store import Store


def release_rates(store: Store, counted: Iterable[tuple[str, str]], *, at: datetime) -> None:
    """Take back one event of each (bucket, key) in `counted` that was counted at `at`: a
    confirmation mail the relay never took holds nothing back and counts in no limit."""
    with store.tx() as conn:
        for bucket, key in counted:
            first = conn.execute(sa.select(rate_events.c.id).where(
                rate_events.c.bucket == bucket, rate_events.c.key == key, rate_events.c.at == at).limit(1)).first()
            if first is not None:
                conn.execute(rate_events.delete().where(rate_events.c.id == first.id))
