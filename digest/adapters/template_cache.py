"""Where Jinja2 keeps the templates it has compiled, between runs: a folder of the user's
cache ($XDG_CACHE_HOME/blog-digest, else ~/.cache/blog-digest), made private. Adapter: it
writes files; core/render.py only takes the cache it is handed.

A new process then loads each template's compiled code instead of compiling it again
(about 70 ms of `digest preview`). Jinja2 keys each entry by the template's name and file
and checks the source's checksum, its own version and Python's: an edited template is
compiled again; the folder's name carries the environment's options, and each entry's
checksum the filters and tests (how each is called is compiled in), which shape the code
too. Compiled code is code: a folder someone else owns or may write to, or one below a
folder others may write to (they could swap it), is not used; the folders it makes are
0700. A cache that cannot be read or written is no cache: the template is compiled, as
without one.
"""

from __future__ import annotations

import os
import pickle
import stat
from collections.abc import Mapping
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket

from ..core.render import ENVIRONMENT_TAG
from ..core.templating import CheckedBytecodeCache


class _Cache(CheckedBytecodeCache, jinja2.FileSystemBytecodeCache):
    """Jinja2's file cache, for which a failure to read or write an entry is a miss, and
    whose entries are good only for an environment with the same filters and tests."""

    def load_bytecode(self, bucket: Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, EOFError, ValueError, TypeError, pickle.UnpicklingError):  # a damaged entry
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:  # the folder went away, or the disk is full: compiled again next time
            pass


def cache_folder(environ: Mapping[str, str] = os.environ) -> Path:
    """$XDG_CACHE_HOME/blog-digest/templates-TAG, else ~/.cache/...: a relative
    XDG_CACHE_HOME is ignored, as the XDG spec says."""
    xdg = environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "blog-digest" / f"templates-{ENVIRONMENT_TAG}"


def bytecode_cache(folder: Path | None = None) -> jinja2.BytecodeCache | None:
    """The cache in `folder` (the user's cache folder by default), or None when that folder
    cannot be made or is not the user's alone."""
    try:
        folder = folder or cache_folder()
        for missing in reversed([p for p in (folder, *folder.parents) if not p.exists()]):
            missing.mkdir(mode=0o700, exist_ok=True)  # private whatever the umask (mkdir -p is not)
        info = folder.lstat()
        guarded = _guarded(folder)
    except (OSError, RuntimeError):  # RuntimeError: no home folder to expand
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022 or not guarded:
        return None
    return _Cache(str(folder))


def _guarded(folder: Path) -> bool:
    """Whether only the user and root can rename or replace a folder on the way to `folder`
    (as written and as its symlinks resolve): each owned by one of them, and not writable
    by others unless sticky (as /tmp, where others cannot rename what is not theirs)."""
    uid = os.getuid()
    for path in (folder, Path(os.path.realpath(folder))):
        for above in path.parents:
            info = above.stat()
            if info.st_uid not in (uid, 0) or (info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX):
                return False
    return True
