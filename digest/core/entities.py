"""Refuse feed documents that declare XML entities. Pure core: no network, no database,
no clock, no file writes; it parses bytes held in memory.

No feed needs entities of its own, and they are how billion-laughs and quadratic blow-up
documents exhaust a machine (a 130 KB feed took feedparser past a 2 GB cap in 16 s). The
question is not "does the text say <!ENTITY" but "will a parser feedparser runs meet a
declaration", so the check asks expat itself, with defusedxml's handlers that raise on
every entity declaration and external reference, and it asks about the bytes feedparser's
parsers will really get:

- feedparser first converts the document to UTF-8 by its own rules (a byte-order mark,
  "<?xm" spelled in UTF-16, UTF-32 or EBCDIC, the declared encoding, then chardet,
  UTF-8, windows-1252): a UTF-16, cp037, UTF-7 or unicode_escape document is plain
  text only after that step. Then it rewrites the DOCTYPE with a regular expression and
  keeps the declarations it calls "safe" for its fallback (loose) parser, which expands
  them without any limit.
- So expat parses the bytes as given (it reads byte-order marks, UTF-16 and declared
  encodings itself), and again as feedparser's strict parser will get them; feedparser's
  list of "safe" entities must be empty; and a document expat cannot read to the end
  (feedparser then falls back to its loose parser, which reads broken markup) must not
  hold "<!ENTITY" anywhere.

A reference to an external DTD (RSS 0.91's Netscape DOCTYPE) is not refused by itself:
nothing here loads it. defusedxml stops at it, so expat has then not read to the end.
"""

from __future__ import annotations

import enum
import re
from xml.sax import SAXException
from xml.sax.handler import ContentHandler

from defusedxml import EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.expatreader import DefusedExpatParser
from feedparser.encodings import convert_to_utf8
from feedparser.sanitizer import replace_doctype

# Any spelling a lenient parser might take for a declaration.
_DECLARATION = re.compile(rb"<!\s*entity", re.IGNORECASE)


class _Reading(enum.Enum):
    COMPLETE = "expat read the whole document and met no entity declaration"
    INCOMPLETE = "expat stopped early: not well-formed, or at an external reference"
    DECLARES = "expat met an entity declaration"


def declares_entities(data: bytes) -> bool:
    """Whether any parser feedparser runs on `data` could meet an XML entity declaration.

    Raises UnicodeError where feedparser itself would (a declared codec that fails
    oddly, such as punycode).
    """
    if _read(data) is _Reading.DECLARES:
        return True
    strict_input, loose_entities = _feedparser_input(data)
    if loose_entities:
        return True
    reading = _read(strict_input)
    if reading is _Reading.DECLARES:
        return True
    return reading is _Reading.INCOMPLETE and _DECLARATION.search(strict_input) is not None


def _feedparser_input(data: bytes) -> tuple[bytes, dict[str, str]]:
    """The UTF-8 bytes feedparser.parse hands its parsers, and the entities it keeps for the loose one.

    The same two steps, in the same order, as feedparser.api.parse (6.0), which receives no
    HTTP headers from us; tests/test_xml_attacks.py checks that it still calls these.
    """
    utf8: bytes = convert_to_utf8({}, data, {})
    _version, prepared, entities = replace_doctype(utf8)
    return prepared, entities


def _read(document: bytes) -> _Reading:
    parser = DefusedExpatParser(namespaceHandling=1, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    parser.setContentHandler(ContentHandler())
    try:
        parser.feed(document)
        parser.close()
    except EntitiesForbidden:
        return _Reading.DECLARES
    except (ExternalReferenceForbidden, SAXException, ValueError, LookupError, Warning):
        # Stopping early is the cautious outcome, so every way expat stops counts: pyexpat
        # raises ValueError for multi-byte codecs it cannot map (UTF-7, Shift_JIS),
        # LookupError for codecs that are not text encodings (base64_codec), and a codec's
        # DeprecationWarning (unicode_escape) where warnings are errors, as in the tests.
        return _Reading.INCOMPLETE
    return _Reading.COMPLETE
