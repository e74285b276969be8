"""Does the DKIM public key in DNS belong to [newsletter] dkim_key_file? Pure core: the key
file's bytes and the TXT strings come in; no network, no database, no clock.

dkimpy reads both halves (its own parsers: the same ones that sign and verify), and the
record to publish is written out for the fix, so that the author can paste it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import dkim
import dkim.crypto

from .dnsrecords import dkim_name
from .verdict import Check, ok, problem, warning


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def _der_int(n: int) -> bytes:
    return _der(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big"))  # one more byte: a leading 0 keeps it positive


_RSA_ENCRYPTION = _der(0x30, _der(0x06, bytes.fromhex("2a864886f70d010101")) + _der(0x05, b""))


def public_record(private_pem: bytes) -> str:
    """The TXT value to publish for an RSA private key (PEM): v=DKIM1; k=rsa; p=<SubjectPublicKeyInfo>.
    ValueError when the file holds no RSA key dkimpy can read."""
    try:
        key = dkim.crypto.parse_pem_private_key(private_pem)
    except (dkim.crypto.UnparsableKeyError, ValueError, IndexError) as exc:
        raise ValueError(f"not an RSA private key in PEM form ({exc})") from None
    rsa = _der(0x30, _der_int(key["modulus"]) + _der_int(key["publicExponent"]))
    spki = _der(0x30, _RSA_ENCRYPTION + _der(0x03, b"\x00" + rsa))
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(spki).decode("ascii")


def judge_dkim(selector: str, domain: str, txts: Sequence[str], private_pem: bytes | None, key_file: str) -> Check:
    """The DKIM line: the TXT at SELECTOR._domainkey.DOMAIN against the private key file."""
    where = dkim_name(selector, domain)
    name = f"DKIM {where}"
    if private_pem is None:
        return problem(name, f"the key file {key_file} cannot be read", "check [newsletter] dkim_key_file")
    try:
        wanted = public_record(private_pem)
    except ValueError as exc:
        return problem(name, f"{key_file}: {exc}", "point [newsletter] dkim_key_file at the PEM file of an RSA key")
    publish = f"publish a TXT record named {where} with the value \"{wanted}\""
    records = [t for t in txts if "p=" in t]
    if not records:
        return problem(name, "no DKIM key published there: receivers cannot check the signature", publish)
    if len(records) > 1:
        return problem(name, f"{len(records)} TXT records there; receivers may pick either", f"keep one: {publish}")
    try:
        published, bits, kind, _ = dkim.evaluate_pk(where.encode(), records[0].encode("ascii", "replace"))
    except dkim.DKIMException as exc:
        return problem(name, f"the record cannot be read: {exc}", publish)
    if kind != b"rsa":
        return warning(name, f"the published key is {kind.decode() if kind else 'of no known kind'}; "
                       "only RSA keys are compared", "check the key by hand")
    mine = dkim.crypto.parse_pem_private_key(private_pem)
    if (published["modulus"], published["publicExponent"]) != (mine["modulus"], mine["publicExponent"]):
        return problem(name, f"the published key is not the public half of {key_file}: every signature fails",
                       f"replace the record: {publish}")
    if bits < 1024:
        return problem(name, f"the key has {bits} bits; receivers ignore keys under 1024", "make a 2048-bit key")
    return ok(name, f"the published {bits}-bit key matches {key_file}")
