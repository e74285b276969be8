"""Ask DNS for TXT, MX and address records (dnspython). Adapter: the only module that
speaks DNS.

`Resolver(nameserver)` asks the server named by `digest doctor --nameserver HOST[:PORT]`,
else the system's (/etc/resolv.conf). A name that does not exist, or has no record of the
kind asked for, is an empty list; a server that does not answer is a DNSError.
"""

from __future__ import annotations

import socket

import dns.exception
import dns.resolver

from ..core.errors import DNSError, InputError


def parse_nameserver(value: str) -> tuple[str, int]:
    """HOST[:PORT] (an IPv6 address in brackets: [::1]:5353) as (address, port)."""
    host, port = value, "53"
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else port
    elif value.count(":") == 1:
        host, port = value.split(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InputError(f"--nameserver {value!r}: not HOST or HOST:PORT")
    try:
        address = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM)[0][4][0]
    except OSError as exc:
        raise InputError(f"--nameserver {value!r}: cannot find {host}: {exc}") from None
    return str(address), int(port)


class Resolver:
    """TXT, MX and address look-ups, each within `timeout` seconds."""

    def __init__(self, nameserver: str | None = None, *, timeout: float = 5.0) -> None:
        try:
            self._resolver = dns.resolver.Resolver(configure=nameserver is None)
        except dns.resolver.NoResolverConfiguration as exc:
            raise DNSError("the system", f"no DNS server configured ({exc})",
                           hint="pass --nameserver HOST[:PORT]") from exc
        if nameserver is not None:
            address, port = parse_nameserver(nameserver)
            self._resolver.nameservers = [address]
            self._resolver.port = port
            self.server = nameserver
        else:
            self.server = ", ".join(str(n) for n in self._resolver.nameservers)
        self._resolver.lifetime = timeout
        self._resolver.timeout = timeout
        self._silent = ""

    def _ask(self, name: str, kind: str) -> list[object]:
        if self._silent:  # a server that did not answer once is not waited for again, look-up after look-up
            raise DNSError(self.server, f"no answer for {name} {kind}: the server did not answer {self._silent}")
        try:
            answer = self._resolver.resolve(name, kind, raise_on_no_answer=False, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout as exc:
            self._silent = f"{name} {kind} either"
            raise DNSError(self.server, f"no answer for {name} {kind} within {self._resolver.lifetime:g} s") from exc
        except dns.resolver.NoNameservers as exc:
            raise DNSError(self.server, f"the server failed to answer {name} {kind}: {exc}") from exc
        except dns.exception.DNSException as exc:
            raise DNSError(self.server, f"{name} {kind}: {exc}") from exc
        return list(answer.rrset) if answer.rrset is not None else []

    def txt(self, name: str) -> list[str]:
        """Each TXT record at `name`, its strings joined (RFC 7208 3.3)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in self._ask(name, "TXT")]  # type: ignore[attr-defined]

    def mx(self, name: str) -> list[tuple[int, str]]:
        """(preference, host) of each MX record; a null MX has the host "."."""
        return [(int(r.preference), r.exchange.to_text()) for r in self._ask(name, "MX")]  # type: ignore[attr-defined]

    def addresses(self, name: str) -> list[str]:
        """The A and AAAA addresses of `name`."""
        return [r.to_text() for kind in ("A", "AAAA") for r in self._ask(name, kind)]  # type: ignore[attr-defined]
