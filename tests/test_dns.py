"""adapters/dns.py: what --nameserver accepts (the look-ups themselves are tested against a
real dnsmasq in test_doctor.py)."""

from __future__ import annotations

import pytest

from digest.adapters.dns import parse_nameserver
from digest.core.errors import InputError


@pytest.mark.parametrize(("value", "expected"), [
    ("127.0.0.1", ("127.0.0.1", 53)),
    ("127.0.0.1:5353", ("127.0.0.1", 5353)),
    ("[::1]:5353", ("::1", 5353)),
    ("[::1]", ("::1", 53)),
    ("::1", ("::1", 53)),
    ("localhost:5353", ("127.0.0.1", 5353)),
])
def test_host_and_port(value: str, expected: tuple[str, int]) -> None:
    host, port = parse_nameserver(value)
    assert (host, port) == expected or (value.startswith("localhost") and host == "::1" and port == expected[1])


@pytest.mark.parametrize("value", ["127.0.0.1:dns", "127.0.0.1:0", "127.0.0.1:70000", ":53", "[::1]:x"])
def test_not_host_port(value: str) -> None:
    with pytest.raises(InputError, match="not HOST or HOST:PORT"):
        parse_nameserver(value)

