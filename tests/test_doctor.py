"""`digest doctor` end to end: a real dnsmasq serving the zone, a real aiosmtpd relay
(with STARTTLS from a trustme CA, and without), a real HTTPS site for the issue's links.
Nothing reaches the network."""

from __future__ import annotations

import base64
import shutil
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword
from conftest import CLI_NOW, Run, require
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dnszone import DNSMASQ, DNSServer, Zone
from feedgen import Entry, atom
from linksite import link_site
from mailserver import MailServer


def rsa_pem() -> tuple[bytes, str]:
    """A private key (PEM) and the DKIM record of its public half, made by `cryptography`."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(public).decode()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def keys() -> dict[str, Any]:
    mine, record = rsa_pem()
    _, other = rsa_pem()
    return {"pem": mine, "record": record, "other_record": other}


def good_zone(keys: dict[str, Any]) -> Zone:
    return Zone(
        txt=[("example.com", "v=spf1 ip4:127.0.0.1 include:_spf.example.com ~all"),
             ("example.com", "google-site-verification=abc"),  # not SPF: ignored
             ("_spf.example.com", "v=spf1 ip4:192.0.2.0/24 -all"),
             ("news._domainkey.example.com", keys["record"]),
             ("_dmarc.example.com", "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com")],
        mx=[("example.com", "mail.example.com", 10)],
        hosts=[("mail.example.com", "127.0.0.1")],
    )


@pytest.fixture
def dns_server() -> Iterator[Callable[[Zone], DNSServer]]:
    require(DNSMASQ is not None, "dnsmasq not found (apt-get install dnsmasq)")
    started: list[DNSServer] = []

    def start(zone: Zone) -> DNSServer:
        started.append(DNSServer(zone))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@dataclass
class Relay:
    server: MailServer | None = None
    logins: list[tuple[str, str]] = field(default_factory=list)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port


@pytest.fixture
def tls_relay(ca: trustme.CA) -> Iterator[Relay]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    relay = Relay()

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            relay.logins.append((data.login.decode(), data.password.decode()))
            return AuthResult(success=data.login == b"author" and data.password == b"s3cret", handled=False)
        return AuthResult(success=False, handled=False)

    relay.server = MailServer(tls_context=context, require_starttls=True, authenticator=authenticator,
                              auth_require_tls=True).start()
    yield relay
    relay.server.stop()  # type: ignore[union-attr]


@pytest.fixture
def site(ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    bundle = tmp_path / "system-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # the link checker trusts the test CA as the system's
    with link_site(ca) as served:
        yield served


CONFIG = """
[blog]
name = "The Wise Job Search"
url = "{site}/"
contact_url = "{site}/p/contact.html"
postal_address = "100 Example Street, Springfield"

[feed]
url = "{feed}"
timeout_seconds = 2

[newsletter]
from = "The Wise Job Search <newsletter@example.com>"
first_issue_days = 36500
dkim_selector = "news"
dkim_key_file = "dkim.pem"
{newsletter}

[question]
url = "{site}/p/contact.html"

[schedule]
timezone = "UTC"

[smtp]
host = "127.0.0.1"
port = {port}
security = "{security}"
ca_file = "ca.pem"
username = "{username}"
password_env = "DIGEST_TEST_SMTP_PASSWORD"
timeout_seconds = 5
retry_window_minutes = 0

[store]
url = "sqlite:///{db}"

[web]
base_url = "{base_url}"
"""


def write(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any], site: str, port: int, *, links: list[str] | None = None,
          security: str = "starttls", username: str = "author", base_url: str | None = None,
          newsletter: str = "", image: str = "/photo.png") -> Path:
    (tmp_path / "dkim.pem").write_bytes(keys["pem"])
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    picture = f'<p><img src="{site}{image}" alt="a photo"></p>' if image else ""
    labels = ["Interviewing", "Resumes", "Networking"]
    entries = [Entry(i + 1, title=f"Post {path}", labels=[labels[i % 3]], link=f"{site}{path}", html=picture + "<p>Text.</p>")
               for i, path in enumerate(links or ["/ok", "/moved", "/no-head"])]
    feed = tmp_path / "feed.xml"
    feed.write_bytes(atom(entries, blog=site))
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(site=site, feed=feed, port=port, security=security, username=username,
                                  base_url=base_url or site, db=tmp_path / "subscribers.db", newsletter=newsletter),
                    encoding="utf-8")
    return path


def lines(result: Run) -> list[str]:
    return [line for line in result.out.splitlines() if line.split(" ", 1)[0] in ("ok", "warning", "problem")]


def doctor(run_cli: Callable[..., Run], config: Path, server: DNSServer, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("DIGEST_TEST_SMTP_PASSWORD", "s3cret")
    return run_cli("doctor", "--config", config, "--nameserver", server.nameserver)


def test_the_good_zone_is_all_ok(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any], site: Any, tls_relay: Relay,
                                 dns_server: Callable[[Zone], DNSServer], run_cli: Callable[..., Run],
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    base, seen = site
    config = write(tmp_path, ca, keys, base, tls_relay.port)
    result = doctor(run_cli, config, dns_server(good_zone(keys)), monkeypatch)
    assert result.code == 0, result.out
    checks = lines(result)
    assert checks and all(line.startswith("ok ") for line in checks), result.out
    names = " ".join(line.split(":", 1)[0] for line in checks)
    for name in ("SPF example.com", "DKIM news._domainkey.example.com", "DMARC example.com", "mail to example.com",
                 "return path alignment", "relay", "relay TLS", "relay login", "From", "Date", "Message-ID",
                 "List-Unsubscribe", "List-Unsubscribe-Post", "size", "links", "images"):
        assert f" {name}" in names, f"no {name} line in:\n{result.out}"
    assert "SPF example.com: v=spf1 ip4:127.0.0.1 include:_spf.example.com ~all, 1 of 10 lookups" in result.out
    assert tls_relay.logins == [("author", "s3cret")] and tls_relay.server is not None and tls_relay.server.received == []  # nothing sent
    unsubscribe = [p for m, p in seen if p.startswith("/unsubscribe/")]
    assert unsubscribe and len({p for p in unsubscribe}) == 1  # the reader's own link: checked once
    assert ("GET", "/no-head") in seen and ("HEAD", "/moved") in seen and ("HEAD", "/ok") in seen


@pytest.mark.parametrize(("change", "expected"), [
    ("dkim", "problem  DKIM news._domainkey.example.com: the published key is not the public half"),
    ("no-dmarc", "problem  DMARC example.com: no DMARC record at _dmarc.example.com"),
    ("two-spf", "problem  SPF example.com: 2 SPF records"),
    ("dmarc-none", "warning  DMARC example.com: p=none at _dmarc.example.com"),
    ("lookups", "problem  SPF example.com: it takes 12 DNS lookups"),
    ("no-mx", "problem  mail to example.com: the From domain has no MX and no address"),
])
def test_a_bad_zone_names_its_problem(change: str, expected: str, tmp_path: Path, ca: trustme.CA,
                                      keys: dict[str, Any], site: Any, tls_relay: Relay,
                                      dns_server: Callable[[Zone], DNSServer], run_cli: Callable[..., Run],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    zone = good_zone(keys)
    if change == "dkim":
        zone.txt = [(n, keys["other_record"] if n.startswith("news.") else v) for n, v in zone.txt]
    elif change == "no-dmarc":
        zone.txt = [(n, v) for n, v in zone.txt if not n.startswith("_dmarc")]
    elif change == "two-spf":
        zone.txt.append(("example.com", "v=spf1 include:_spf.example.com -all"))
    elif change == "dmarc-none":
        zone.txt = [(n, "v=DMARC1; p=none" if n.startswith("_dmarc") else v) for n, v in zone.txt]
    elif change == "lookups":  # 1 include + 11 a: mechanisms under it
        zone.txt = [(n, v) for n, v in zone.txt if n != "_spf.example.com"]
        zone.txt.append(("_spf.example.com", "v=spf1 " + " ".join(f"a:h{i}.example.com" for i in range(11)) + " -all"))
    elif change == "no-mx":
        zone.mx, zone.hosts = [], []
    base, _ = site
    config = write(tmp_path, ca, keys, base, tls_relay.port)
    result = doctor(run_cli, config, dns_server(zone), monkeypatch)
    assert expected in result.out, result.out
    assert result.code == (0 if expected.startswith("warning") else 1)
    assert sum(1 for line in lines(result) if not line.startswith("ok ")) == 1, result.out  # only what was changed


def test_a_dead_link_is_a_problem_and_a_silent_one_a_warning(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any],
                                                              site: Any, tls_relay: Relay,
                                                              dns_server: Callable[[Zone], DNSServer],
                                                              run_cli: Callable[..., Run],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ = site
    config = write(tmp_path, ca, keys, base, tls_relay.port, links=["/ok", "/dead", "/never", "/moved"],
                   image="/huge.png")
    result = doctor(run_cli, config, dns_server(good_zone(keys)), monkeypatch)
    assert result.code == 1
    assert f"problem  link: {base}/dead answers 404: a dead link" in result.out, result.out
    assert f"warning  link: {base}/never did not answer (no answer within 2 s)" in result.out
    assert f"{base}/moved" not in result.out  # a redirect to a page that answers is fine
    assert f"warning  image: {base}/huge.png is 1.2 MB: slow on a phone" in result.out


def test_a_relay_without_tls(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any], site: Any, mail_server: Any,
                             dns_server: Callable[[Zone], DNSServer], run_cli: Callable[..., Run],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ = site
    server = dns_server(good_zone(keys))
    plain = write(tmp_path, ca, keys, base, mail_server.port, security="none", username="")
    result = doctor(run_cli, plain, server, monkeypatch)
    assert f"warning  relay TLS: plain SMTP to 127.0.0.1:{mail_server.port}: fine on this machine" in result.out
    assert result.code == 0, result.out
    wanted = write(tmp_path, ca, keys, base, mail_server.port, security="starttls", username="")
    result = doctor(run_cli, wanted, server, monkeypatch)
    assert "problem  relay TLS: the relay does not offer STARTTLS" in result.out, result.out
    assert result.code == 1
    assert mail_server.received == []


def test_a_certificate_that_does_not_verify_and_a_wrong_password(tmp_path: Path, ca: trustme.CA,
                                                                 keys: dict[str, Any], site: Any, tls_relay: Relay,
                                                                 dns_server: Callable[[Zone], DNSServer],
                                                                 run_cli: Callable[..., Run],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    base, _ = site
    server = dns_server(good_zone(keys))
    config = write(tmp_path, ca, keys, base, tls_relay.port)
    config.write_text(config.read_text().replace('ca_file = "ca.pem"', 'ca_file = "other.pem"'))
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "other.pem"))  # another CA than the relay's
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "other.pem"))  # and the "system's" does not know it either
    result = doctor(run_cli, config, server, monkeypatch)
    assert "problem  relay TLS: TLS certificate not trusted" in result.out, result.out
    config = write(tmp_path, ca, keys, base, tls_relay.port)
    monkeypatch.setenv("DIGEST_TEST_SMTP_PASSWORD", "wrong")
    result = run_cli("doctor", "--config", config, "--nameserver", server.nameserver)
    assert "problem  relay login: login refused: 535" in result.out, result.out


def test_offline_asks_no_one(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any], run_cli: Callable[..., Run]) -> None:
    config = write(tmp_path, ca, keys, "https://unreachable.invalid", 9, base_url="http://news.example.com")
    result = run_cli("doctor", "--config", config, "--offline", "--nameserver", "127.0.0.1:9")
    assert result.code == 1
    assert "problem  List-Unsubscribe: http://news.example.com/unsubscribe/... is plain http" in result.out
    names = {line.split(":", 1)[0].split(None, 1)[1] for line in lines(result)}
    assert names == {"From", "Date", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "size", "DKIM key"} | (
        {"SpamAssassin"} if shutil.which("spamassassin") else set()), result.out
    assert "Note: DNS, the relay and the issue's links and images were not checked (--offline)." in result.out


SPAM = ("<p>Dear Beneficiary, CONGRATULATIONS!!! You have WON the sum of $25,000,000.00 (TWENTY FIVE MILLION UNITED "
        "STATES DOLLARS) in our international lottery. To claim your prize send your bank account and next of kin to "
        "our claims agent.</p>")


def test_spamassassin_lists_the_rules_of_a_spammy_issue(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any],
                                                        run_cli: Callable[..., Run]) -> None:
    require(shutil.which("spamassassin") is not None, "spamassassin not found (apt-get install spamassassin)")
    site = "https://127.0.0.1:9"
    config = write(tmp_path, ca, keys, site, 9)
    clean = run_cli("doctor", "--config", config, "--offline")
    assert "ok       SpamAssassin: score " in clean.out, clean.out
    entries = [Entry(i, title=f"WIN $25,000,000 CASH NOW {i}", labels=["Interviewing"], link=f"{site}/p{i}", html=SPAM * 3)
               for i in (1, 2)]
    (tmp_path / "feed.xml").write_bytes(atom(entries, blog=site))
    spammy = run_cli("doctor", "--config", config, "--offline")
    line = next(x for x in spammy.out.splitlines() if "SpamAssassin" in x)
    assert line.startswith(("warning  SpamAssassin: score", "problem  SpamAssassin: score")), spammy.out
    assert "DEAR_BENEFICIARY (+" in line and "US_DOLLARS_3 (+" in line


def test_a_return_path_on_another_domain_is_checked_too(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any],
                                                         site: Any, tls_relay: Relay,
                                                         dns_server: Callable[[Zone], DNSServer],
                                                         run_cli: Callable[..., Run],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    zone = good_zone(keys)
    zone.domains = ("example.com", "example.net")
    zone.txt.append(("esp.example.net", "v=spf1 ip4:198.51.100.0/24 ~all"))
    base, _ = site
    config = write(tmp_path, ca, keys, base, tls_relay.port, newsletter='return_path = "bounces@esp.example.net"')
    result = doctor(run_cli, config, dns_server(zone), monkeypatch)
    assert "ok       SPF esp.example.net: v=spf1 ip4:198.51.100.0/24 ~all, 0 of 10 lookups" in result.out, result.out
    assert "problem  mail to esp.example.net: the return path domain has no MX and no address" in result.out
    assert ("warning  return path alignment: bounces go to esp.example.net, not aligned with From's example.com"
            in result.out)
    assert result.code == 1


def test_a_nameserver_that_does_not_answer_is_waited_for_once(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any],
                                                              run_cli: Callable[..., Run]) -> None:
    import socket
    import time

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # takes the queries, answers none
        silent.bind(("127.0.0.1", 0))
        config = write(tmp_path, ca, keys, "https://127.0.0.1:9", 9)
        config.write_text(config.read_text().replace("timeout_seconds = 5", "timeout_seconds = 1"))
        started = time.monotonic()
        result = run_cli("doctor", "--config", config, "--nameserver", f"127.0.0.1:{silent.getsockname()[1]}")
    assert "problem  SPF example.com: DNS 127.0.0.1:" in result.out and "within 1 s" in result.out, result.out
    assert "problem  DMARC example.com: DNS" in result.out and "the server did not answer" in result.out
    assert time.monotonic() - started < 8  # one wait of 1 s, not one per look-up
    assert result.code == 1


def test_a_nameserver_that_is_not_host_port(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any],
                                            run_cli: Callable[..., Run]) -> None:
    config = write(tmp_path, ca, keys, "https://127.0.0.1:9", 9)
    result = run_cli("doctor", "--config", config, "--nameserver", "127.0.0.1:dns")
    assert result.code == 2 and result.err == "Error: --nameserver '127.0.0.1:dns': not HOST or HOST:PORT\n"


def test_a_dkim_key_that_cannot_sign(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any],
                                     run_cli: Callable[..., Run]) -> None:
    config = write(tmp_path, ca, keys, "https://127.0.0.1:9", 9)
    assert "ok       DKIM key: " in run_cli("doctor", "--config", config, "--offline").out
    (tmp_path / "dkim.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    result = run_cli("doctor", "--config", config, "--offline")
    assert result.code == 1 and "problem  DKIM key: " in result.out and " cannot sign: " in result.out, result.out
    (tmp_path / "dkim.pem").unlink()
    gone = run_cli("doctor", "--config", config, "--offline")
    assert gone.code == 1 and "problem  DKIM key: " in gone.out and "cannot be read" in gone.out, gone.out


def test_the_web_apps_own_links_answer(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any]) -> None:
    """The reader's links of the issue against the real web app (uvicorn on loopback): the
    made-up reader's unsubscribe and preferences pages, the archive, the subscribe page."""
    import threading
    import time

    import uvicorn
    from mailserver import free_port

    from digest.adapters.store import Store
    from digest.cli.wiring import Wiring
    from digest.core.config import read_config
    from digest.jobs.doctor import link_checks
    from digest.jobs.preview import build_preview
    from digest.web import create_app

    port = free_port()
    site = f"http://127.0.0.1:{port}"
    path = write(tmp_path, ca, keys, site, 9, links=["/archive/", "/subscribe"], image="")
    path.write_text(path.read_text().replace('url = "' + site + '/"', 'url = "' + site + '/archive/"')
                    .replace(f'"{site}/p/contact.html"', f'"{site}/ask"'))
    config = read_config(path, {"DIGEST_SECRET": "doctor-secret-0123456789abcdef"})
    store = Store.open(config.store.url)
    server = uvicorn.Server(uvicorn.Config(create_app(config, store, send_confirmation=lambda sub, now: None),
                                           host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        wiring = Wiring(config, store=store, clock=lambda: CLI_NOW)
        issue = build_preview(config.publication, wiring.fetch, now=CLI_NOW)
        assert issue is not None
        checks = link_checks(config.publication, wiring, issue.template)
    finally:
        server.should_exit = True
        thread.join(10)
        store.close()
    assert [c.level.value for c in checks] == ["ok", "ok"], checks  # links, and images (none)
    assert checks[0].finding.startswith(tuple(f"{n} of {n} links answer" for n in range(5, 20))), checks[0]


def test_a_subdomain_from_is_covered_by_its_parents_dmarc(tmp_path: Path, ca: trustme.CA, keys: dict[str, Any],
                                                          site: Any, tls_relay: Relay,
                                                          dns_server: Callable[[Zone], DNSServer],
                                                          run_cli: Callable[..., Run],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    zone = Zone(txt=[("news.example.com", "v=spf1 ip4:127.0.0.1 -all"),
                     ("news._domainkey.news.example.com", keys["record"]),
                     ("_dmarc.example.com", "v=DMARC1; p=reject")],
                mx=[("news.example.com", "mail.example.com", 10)], hosts=[("mail.example.com", "127.0.0.1")])
    base, _ = site
    config = write(tmp_path, ca, keys, base, tls_relay.port)
    config.write_text(config.read_text().replace("newsletter@example.com", "newsletter@news.example.com"))
    result = doctor(run_cli, config, dns_server(zone), monkeypatch)
    assert "ok       DMARC news.example.com: p=reject at _dmarc.example.com" in result.out, result.out
    assert result.code == 0, result.out


# ---- hostile DNS ----

def test_a_web_of_spf_includes_is_not_walked_without_end(dns_server: Callable[[Zone], DNSServer]) -> None:
    """Four layers of four names, each including every name of the layer below: no loop,
    yet walked path by path that is 340 TXT queries (and wider, deeper webs, millions: a
    doctor that never ends). Receivers stop at 10 lookups (RFC 7208 4.6.4), and so can the
    count: the verdict is known by then."""
    from digest.adapters.dns import Resolver
    from digest.jobs.doctor import _spf

    layers = [[f"l{k}n{i}.example.com" for i in range(4)] for k in range(4)]
    txt = [("example.com", "v=spf1 " + " ".join(f"include:{n}" for n in layers[0]) + " -all")]
    for k in range(3):
        txt += [(n, "v=spf1 " + " ".join(f"include:{m}" for m in layers[k + 1]) + " -all") for n in layers[k]]
    txt += [(n, "v=spf1 ip4:192.0.2.1 -all") for n in layers[3]]
    server = DNSServer(Zone(txt=txt), log_queries=True)
    try:
        check = _spf(Resolver(server.nameserver), "example.com")
    finally:
        server.stop()
    assert "receivers stop at 10" in check.finding, check
    asked = server.queries("TXT")
    assert asked <= 1 + 10 + 1, f"{asked} TXT queries for one SPF check"
