"""A real DNS server for tests: Debian's dnsmasq on a free loopback port, answering only
the records a test writes (TXT, MX, addresses) and NXDOMAIN for every other name under the
zone's domains (`--local`), never asking anyone else (`--no-resolv`)."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import dns.exception
import dns.resolver
from mailserver import free_port

DNSMASQ = shutil.which("dnsmasq") or ("/usr/sbin/dnsmasq" if Path("/usr/sbin/dnsmasq").exists() else None)


@dataclass
class Zone:
    """The records to serve. A TXT value longer than 255 characters is cut into strings."""

    txt: list[tuple[str, str]] = field(default_factory=list)
    mx: list[tuple[str, str, int]] = field(default_factory=list)   # (domain, host, preference)
    hosts: list[tuple[str, str]] = field(default_factory=list)     # (name, address)
    domains: tuple[str, ...] = ("example.com",)

    def args(self) -> list[str]:
        out = [f"--local=/{d}/" for d in self.domains]
        for name, value in self.txt:
            if "," in value:
                raise ValueError("dnsmasq reads a comma as the end of a TXT string")
            chunks = [value[i:i + 255] for i in range(0, len(value), 255)]
            out.append(f"--txt-record={name},{','.join(chunks)}")
        out += [f"--mx-host={d},{h},{p}" for d, h, p in self.mx]
        out += [f"--host-record={n},{a}" for n, a in self.hosts]
        return out


class DNSServer:
    """dnsmasq in the foreground, stopped by the fixture; `nameserver` is its HOST:PORT."""

    def __init__(self, zone: Zone, *, log_queries: bool = False) -> None:
        assert DNSMASQ is not None
        self.log_queries = log_queries
        self.log = ""
        # the log goes to a file: a pipe nobody reads fills up, and dnsmasq stops answering
        self._log_handle = tempfile.NamedTemporaryFile(prefix="dnsmasq-", suffix=".log") if log_queries else None  # noqa: SIM115 (closed by stop)
        self.port = free_port()
        self.nameserver = f"127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [DNSMASQ, "--no-daemon", f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces",
             "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--pid-file", "--cache-size=0",
             *(["--log-queries", "--log-facility=-"] if log_queries else []), *zone.args()],
            stdout=self._log_handle or subprocess.PIPE, stderr=subprocess.STDOUT)
        self._wait()

    def _wait(self) -> None:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, resolver.port, resolver.lifetime = ["127.0.0.1"], self.port, 0.5
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out = self.process.stdout.read().decode() if self.process.stdout else ""
                raise RuntimeError(f"dnsmasq exited: {out}")
            try:
                resolver.resolve("probe.invalid", "A", raise_on_no_answer=False)
                return
            except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
                return  # it answered
            except dns.exception.Timeout:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dnsmasq did not answer within 10 s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()
        if self._log_handle is not None:
            self.log = Path(self._log_handle.name).read_text("utf-8", "replace")
            self._log_handle.close()

    def queries(self, kind: str) -> int:
        """How many `kind` queries the server was asked (log_queries=True; after stop())."""
        return sum(1 for line in self.log.splitlines() if re.search(rf"query\[{kind}\]", line))
