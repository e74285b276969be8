"""The secret that signs links, and the DKIM key that signs messages. Adapter: reads, and
once creates, a file.

The environment variable named by [web] secret_env wins when it is set. Otherwise the
secret lives in [web] secret_file (default subscribers/secret, next to the database),
created by whichever command needs it first: `digest send` in one shell and
`digest serve` in another, before and after a restart, all sign with the same secret, so
links already sent keep working. Nobody has to keep it by hand.

The file appears whole or not at all: the secret is written to a private temporary file
(mkstemp: O_CREAT|O_EXCL, mode 600) and hard-linked to its name, which fails if another
process got there first; that process's secret is then read and used. A file that group
or others can read or write is refused rather than fixed: someone could have copied it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import tempfile
from pathlib import Path

from ..core.config import Config
from ..core.errors import ConfigError
from ..core.message import sender_domain
from ..core.sign import Signer

MIN_LENGTH = 16
_KEY = "web.secret_file"


def load_or_create_secret(config: Config) -> str:
    """The link secret: the environment variable when set, else the secret file, made on first use."""
    web = config.web
    if web.secret:
        if len(web.secret) < MIN_LENGTH:
            raise ConfigError(str(config.path), f"the secret in the environment variable {web.secret_env} ([web] "
                              f"secret_env) is too short: use {MIN_LENGTH} characters or more, or unset it to use "
                              "[web] secret_file", key="web.secret_env")
        return web.secret
    if not web.secret_file:
        raise ConfigError(str(config.path), f"no secret to sign links: set the environment variable {web.secret_env} "
                          "([web] secret_env) or [web] secret_file", key=_KEY)
    path = Path(web.secret_file)
    found = _read(path)
    return found if found is not None else _create(path)


def _read(path: Path) -> str | None:
    """The secret in `path`, None if there is no such file; refuses one others can read."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(str(path), f"the link secret ([web] secret_file) cannot be read: {exc.strerror}",
                          key=_KEY) from exc
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(str(path), "the link secret ([web] secret_file) is not a file", key=_KEY)
        if info.st_mode & 0o077:
            raise ConfigError(str(path), "the link secret can be read or changed by group or others "
                              f"(mode {stat.S_IMODE(info.st_mode):o}): "
                              f"run chmod 600 {path}", key=_KEY)
        raw = file.read(4096)
    try:
        secret = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        secret = ""
    if len(secret) < MIN_LENGTH:
        raise ConfigError(str(path), f"the link secret ([web] secret_file) is empty or shorter than {MIN_LENGTH} "
                          "characters: put a long random string in it, or delete it to have one made "
                          "(links already sent stop working)", key=_KEY)
    return secret


def _create(path: Path) -> str:
    secret = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".secret-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as file:
                file.write(secret + "\n")
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process made it meanwhile: use theirs
                theirs = _read(path)
                return theirs if theirs is not None else _create(path)  # and deleted since: try again
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        _sync_folder(path.parent)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot create the link secret ([web] secret_file): {exc.strerror}; "
                          "set the environment variable of [web] secret_env instead", key=_KEY) from exc
    return secret


def _sync_folder(folder: Path) -> None:
    """Make the new name durable: a secret lost in a power cut would break the links sent with it."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_signer(config: Config) -> Signer | None:
    """The DKIM signer of [newsletter] dkim_selector, with the key of dkim_key_file (None: no
    selector, no signing); ConfigError naming the file when it cannot be read."""
    n = config.newsletter
    if not n.dkim_selector:
        return None
    try:
        key = Path(n.dkim_key_file).read_bytes()
    except OSError as exc:
        raise ConfigError(str(config.path), f"[newsletter] dkim_key_file {n.dkim_key_file!r} cannot be read: {exc.strerror}") from exc
    return Signer(n.dkim_selector, sender_domain(n.from_), key)
