"""XML from uploads, parsed with DTDs, entities and external references all refused (defusedxml).

An invoice XML never needs a DTD, so any DOCTYPE is refused: that stops entity expansion
("billion laughs"), external entities (XXE reading server files) and DTD retrieval at once.

Public API:

- ``parse_xml(content) -> Element``: or raise ``EvidenceRefused`` (``xml_entities``, ``corrupt``).
- ``local_name(tag) -> str``: the tag without its ``{namespace}``.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from portal.scans.errors import EvidenceRefused


def parse_xml(content: bytes) -> Element:
    """Parse ``content`` refusing any DTD, entity declaration or external reference."""
    try:
        return defusedxml.ElementTree.fromstring(
            content, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except defusedxml.DefusedXmlException as error:
        raise EvidenceRefused("xml_entities") from error
    except (ParseError, ValueError, UnicodeError) as error:
        raise EvidenceRefused("corrupt") from error


def local_name(tag: object) -> str:
    """Return an element's tag without its namespace (``{http://…}InvoiceNumber`` -> …)."""
    if not isinstance(tag, str):  # comments and processing instructions
        return ""
    return tag.rsplit("}", 1)[-1]
