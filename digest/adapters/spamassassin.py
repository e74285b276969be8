"""Run SpamAssassin's local rules on a message (`spamassassin -L -t`), when installed.
Adapter (a subprocess): -L asks no network test, -x writes no preferences file.
"""

from __future__ import annotations

import shutil
import subprocess


def spamassassin_report(message: bytes, *, timeout: float = 120.0) -> str | None:
    """The output of `spamassassin -L -x -t` (the message with its report); None when
    spamassassin is not installed or fails."""
    exe = shutil.which("spamassassin")
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, "-L", "-x", "-t"], input=message, capture_output=True, timeout=timeout,
                              check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.decode("utf-8", "replace")

