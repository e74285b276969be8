"""The composition root (cli/wiring.py): each part built once per process, on first use,
its adapter imported only then; a store handed in stays its owner's."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import ROOT

from digest.adapters.store import Store
from digest.cli.wiring import Wiring
from digest.core.config import read_config

SECRET = "wiring-secret-0123456789abcdef"


@pytest.mark.slow  # starts processes
def test_a_preview_with_no_store_loads_no_database_mail_http_or_dkim_library(tmp_path: Path) -> None:
    """Nor premailer's requests (it never fetches), nor markdown-it (no note); and it keeps
    the templates it compiled in the user's cache folder, for the next run."""
    code = (
        "import sys\n"
        "from digest.cli import main\n"
        "try:\n"
        f"    main(['preview', '--all', '--out', {str(tmp_path / 'out')!r}, '--config', {str(ROOT / 'config.toml')!r}])\n"
        "except SystemExit as exc:\n"
        "    assert not exc.code, exc.code\n"
        "print('LOADED', ','.join(m for m in ('sqlalchemy', 'alembic', 'smtplib', 'imap_tools', 'starlette', 'httpx', 'dkim', 'dns', 'urllib3', "
        "'markdown_it')"
        " if m in sys.modules))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DIGEST_SECRET": SECRET,
                              "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert run.returncode == 0, run.stderr
    assert len(list((tmp_path / "cache" / "blog-digest").glob("templates-*/__jinja2_*.cache"))) == 2  # issue.html, .txt
    assert (tmp_path / "out" / "issue.html").exists() and not (tmp_path / "subscribers").exists()
    assert run.stdout.splitlines()[-1] == "LOADED ", run.stdout


def test_each_part_is_built_once_and_the_store_only_when_asked(write_config: Callable[..., Path]) -> None:
    config = read_config(write_config(), {"DIGEST_SECRET": SECRET})
    db = Path(config.store.url.removeprefix("sqlite:///"))
    with Wiring(config) as wiring:
        assert not wiring.store_exists() and not db.exists()  # nothing asked for the store yet
        outboxes: list[object] = []
        threads = [threading.Thread(target=lambda: outboxes.append(wiring.outbox)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({id(o) for o in outboxes}) == 1 and wiring.outbox.senders is wiring.ledger
        assert wiring.questions is wiring.questions and wiring.ledger.store is wiring.store
        assert db.exists() and wiring.store_exists()
        store = wiring.store
    assert store is not None
    with Wiring(config) as again:  # closed, then opened anew by the next process's wiring
        assert again.store is not store


def test_a_store_handed_in_stays_open_after_the_wiring_closes(write_config: Callable[..., Path]) -> None:
    config = read_config(write_config(), {"DIGEST_SECRET": SECRET})
    store = Store.open(config.store.url)
    try:
        with Wiring(config, store=store) as wiring:
            assert wiring.ledger.store is store
        assert store.count() == 0  # still usable
    finally:
        store.close()
