"""DKIM-sign raw messages with dkimpy. Pure core: no network, no database, no clock (dkimpy
stamps no time unless asked), no file writes; the key comes in as bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

# The List-Unsubscribe headers are signed so that no one on the way can change them.
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"mime-version", b"content-type",
                  b"list-id", b"list-unsubscribe", b"list-unsubscribe-post")


@dataclass(frozen=True)
class Signer:
    selector: str
    domain: str
    private_key: bytes

    def sign(self, message: bytes) -> bytes:
        """The message with a DKIM-Signature header in front."""
        import dkim  # here, not above: dkimpy loads dnspython, which a command that signs nothing never needs

        present = {line.split(b":", 1)[0].strip().lower() for line in message.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
                   if line and not line[:1].isspace()}
        headers = [h for h in SIGNED_HEADERS if h in present]
        signature = dkim.sign(message, self.selector.encode(), self.domain.encode(), self.private_key,
                              include_headers=headers, linesep=b"\r\n")
        return bytes(signature) + message
