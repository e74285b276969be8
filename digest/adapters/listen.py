"""The listening sockets of `digest serve`. Adapter: binds sockets.

uvicorn.run binds by itself, and on failure logs the error and calls sys.exit with its
own code (3, which is ours for "config.toml is wrong"). Binding here first, before the
store is opened or anything started, turns "address already in use" into one ListenError
line with an exit code of its own; uvicorn is then handed the bound sockets.
"""

from __future__ import annotations

import errno
import socket

from ..core.errors import ListenError

_HINTS = {
    errno.EADDRINUSE: "another program listens there: stop it, or choose another port with {option}",
    errno.EACCES: "ports below 1024 need privileges: choose another port with {option}",
    errno.EADDRNOTAVAIL: "that address is not one of this machine's: check --host",
}


def bind_sockets(host: str, port: int, *, option: str = "--port") -> list[socket.socket]:
    """Sockets bound to every address `host` names (as asyncio's create_server binds), not yet
    listening; `option` is the command-line option that chose the port (named in the hint)."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(host, port, f"no such address ({exc.strerror})", hint="check --host") from exc
    bound: list[socket.socket] = []
    failure: OSError | None = None
    for family, kind, proto, _name, address in dict.fromkeys(infos):  # /etc/hosts may list one address twice
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRNOTAVAIL:  # e.g. ::1 on a machine without IPv6: skip, as asyncio does
                failure = failure or exc
                continue
            for other in bound:
                other.close()
            raise _error(host, port, exc, option) from exc
        bound.append(sock)
    if not bound:
        raise _error(host, port, failure or OSError(errno.EADDRNOTAVAIL, "no address to listen on"), option)
    return bound


def _error(host: str, port: int, exc: OSError, option: str) -> ListenError:
    reason = (exc.strerror or str(exc)).lower()
    hint = _HINTS.get(exc.errno or 0)
    return ListenError(host, port, reason, hint=hint.format(option=option) if hint else None)
