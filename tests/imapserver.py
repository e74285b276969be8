"""A throwaway Dovecot IMAP server from Debian's dovecot-imapd (`dovecot -F` with a config
written to a temporary folder, on free loopback ports), the way tests/pg.py starts
PostgreSQL. TLS is required, with a certificate from a test CA (trustme); users and
passwords come from a passwd-file; mail lives in Maildir folders under the same folder.

As root (CI), the master process runs as root, as Dovecot expects, and the mail
processes run as `nobody`, since Dovecot refuses mail access as uid 0. As another user,
everything runs as that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import trustme
from mailserver import free_port

DOVECOT = "/usr/sbin/dovecot"
DOVEADM = "/usr/bin/doveadm"
USER = "digest"
PASSWORD = "imap-pass-0123"
SPARE_USERS = 500

CONF = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = required
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = {uid}
first_valid_gid = {gid}
default_login_user = {login_user}
default_internal_user = {internal_user}
default_internal_group = {internal_group}
mail_location = maildir:{root}/mail/%u
mail_uid = {uid}
mail_gid = {gid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def dovecot_available() -> bool:
    return os.access(DOVECOT, os.X_OK)


@dataclass
class IMAPServer:
    root: Path
    imap_port: int     # STARTTLS
    imaps_port: int    # implicit TLS
    ca_file: Path
    conf: Path
    process: subprocess.Popen[bytes] | None = None
    users_given: int = 0

    def maildir(self, user: str = USER) -> Path:
        return self.root / "mail" / user

    def log(self) -> str:
        try:
            return (self.root / "dovecot.log").read_text(errors="replace")
        except OSError:
            return ""

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def start(self) -> IMAPServer:
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out = self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""
                raise RuntimeError(f"dovecot exited with {self.process.returncode}: {out}\n{self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.imaps_port), timeout=1).close()
                socket.create_connection(("127.0.0.1", self.imap_port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen within 30 s:\n{self.log()}")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        if self.process.stdout:
            self.process.stdout.close()
        self.process = None

    def add_user(self) -> str:
        """Another user with an empty mailbox of its own. The users are all written at the
        start: Dovecot looks at a changed passwd-file at most once a second."""
        self.users_given += 1
        if self.users_given >= SPARE_USERS:
            raise RuntimeError(f"more than {SPARE_USERS} users asked of one server")
        return f"u{self.users_given:03d}"

    def kick(self) -> None:
        """Disconnect every session of the test user (doveadm kick)."""
        subprocess.run([DOVEADM, "-c", str(self.conf), "kick", USER], check=True, capture_output=True, timeout=30)


def _ids() -> tuple[int, int, str, str, str]:
    """(mail uid, mail gid, login user, internal user, internal group)."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_uid, me.pw_gid, me.pw_name, me.pw_name, me.pw_name
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_uid, nobody.pw_gid, "dovenull", "dovecot", "dovecot"


@contextmanager
def imap_server(ca: trustme.CA | None = None) -> Iterator[IMAPServer]:
    """A running Dovecot with the user digest / PASSWORD (and spare users, add_user), each
    with an empty INBOX; stopped and deleted afterwards."""
    ca = ca or trustme.CA()
    root = Path(tempfile.mkdtemp(prefix="digest-imap-", dir="/tmp"))
    uid, gid, login_user, internal_user, internal_group = _ids()
    try:
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(root / "cert.pem"))
        ca.cert_pem.write_to_path(str(root / "ca.pem"))
        (root / "passwd").write_text("".join(f"{name}:{{PLAIN}}{PASSWORD}::::::\n"
                                             for name in [USER, *(f"u{i:03d}" for i in range(1, SPARE_USERS))]))
        server = IMAPServer(root, free_port(), free_port(), root / "ca.pem", root / "dovecot.conf")
        server.conf.write_text(CONF.format(root=root, uid=uid, gid=gid, login_user=login_user,
                                           internal_user=internal_user, internal_group=internal_group,
                                           imap_port=server.imap_port, imaps_port=server.imaps_port))
        if os.geteuid() == 0:
            os.chmod(root, 0o755)
            os.chown(root / "mail", uid, gid)
        server.start()
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
