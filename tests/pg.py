"""A throwaway PostgreSQL server from Debian's postgresql binaries (initdb + pg_ctl in a
temporary folder, on a free loopback port). As root (CI), the server runs as the
`postgres` user, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from mailserver import free_port


def pg_bin() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return os.path.dirname(found[-1]) if found else None


def _as_server_user(cmd: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh server; stop and delete it afterwards."""
    bindir = pg_bin()
    assert bindir, "no PostgreSQL binaries"
    root = tempfile.mkdtemp(prefix="digest-pg-", dir="/tmp")
    data, sock = os.path.join(root, "data"), os.path.join(root, "sock")
    os.makedirs(sock)
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sock):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = free_port()
    log = os.path.join(root, "server.log")
    run = lambda cmd: subprocess.run(_as_server_user(cmd), check=True, capture_output=True, timeout=120)  # noqa: E731
    try:
        run([f"{bindir}/initdb", "-D", data, "-U", "digest", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"])
        run([f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "start", "-o",
             f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"])
        run([f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "digest", "digest"])
        yield f"postgresql+psycopg://digest@127.0.0.1:{port}/digest"
    finally:
        subprocess.run(_as_server_user([f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)
