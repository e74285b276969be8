"""Judge the mail relay as probed (adapters/probe.py): it answers, its TLS, its login. Pure
core: the probe's findings come in as data; no network, no database, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from .deliverability import is_loopback
from .verdict import Check, ok, problem, warning


@dataclass(frozen=True)
class RelayProbe:
    """What connecting to [smtp] found; nothing was sent."""

    host: str
    port: int
    security: str                   # as configured: "starttls", "ssl", "none"
    error: str = ""                 # why it did not answer (or TLS failed): empty when it did
    stage: str = ""                 # where the error came: "connect", "tls", "login"
    starttls_offered: bool = False
    tls_version: str = ""           # the TLS session's version, when one was made and verified
    login: str = ""                 # "" no username set; "ok"; else the refusal
    auth_offered: str = ""          # the server's AUTH mechanisms


def judge_relay(p: RelayProbe) -> list[Check]:
    where = f"{p.host}:{p.port}"
    local = is_loopback(p.host)
    if p.stage == "connect":
        return [problem("relay", f"{where} does not answer: {p.error}", "check [smtp] host, port and security")]
    checks = [ok("relay", f"{where} answers")]
    checks.append(_tls(p, where, local))
    if p.stage == "tls":
        return checks
    if not p.login:
        if local:
            checks.append(ok("relay login", "no [smtp] username: a relay on this machine"))
        else:
            checks.append(warning("relay login", "no [smtp] username: most relays refuse mail without a login",
                                  "set [smtp] username and password_env"))
    elif p.login == "ok":
        checks.append(ok("relay login", "accepted"))
    else:
        checks.append(problem("relay login", p.login, "check [smtp] username and the password in [smtp] password_env"))
    return checks


def _tls(p: RelayProbe, where: str, local: bool) -> Check:
    name = "relay TLS"
    if p.stage == "tls":
        return problem(name, p.error, "fix the server's certificate, or set [smtp] ca_file to the CA that signed it")
    if p.tls_version:
        return ok(name, f"{'STARTTLS' if p.security == 'starttls' else 'TLS'} ({p.tls_version}), certificate verified")
    offered = " (the relay offers STARTTLS)" if p.starttls_offered else ""
    fix = ("set [smtp] security = \"starttls\"" if p.starttls_offered else
           "use your provider's TLS port (587 with security = \"starttls\", or 465 with \"ssl\")")
    if local:
        return warning(name, f"plain SMTP to {where}{offered}: fine on this machine, never across a network", fix)
    return problem(name, f"plain SMTP to {where}{offered}: the password and every reader's address cross the "
                   "network unencrypted", fix)
