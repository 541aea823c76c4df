"""What an upload really is: its type from its first bytes, never from its name or Content-Type.

The type must also match an allow-listed extension of the file's name, so a renamed file is
refused with a clear reason (OWASP file-upload rules). Markup that a browser would run (HTML,
SVG) is refused as active content whatever it is called.

Public API:

- ``FileKind``: the accepted types (JPEG, PNG, WebP, HEIC photos; PDF, OFD, 数电票 XML) with
  ``media_type``, ``extensions``, ``label`` and ``is_image``.
- ``HEAD_BYTES``: how many leading bytes ``sniff`` wants to see.
- ``sniff(head, filename) -> FileKind``: or raise ``EvidenceRefused``.
- ``detect_kind(head) -> FileKind | None``: the type from the content alone.
- ``safe_filename(name) -> str``: a name fit to show and store as the original name.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum

from portal.scans.errors import EvidenceRefused

HEAD_BYTES = 4096
MAX_FILENAME_LENGTH = 120


class FileKind(Enum):
    """An accepted evidence type: (media type, allowed extensions, label, Pillow format)."""

    JPEG = ("image/jpeg", (".jpg", ".jpeg", ".jfif"), "JPEG", "JPEG")
    PNG = ("image/png", (".png",), "PNG", "PNG")
    WEBP = ("image/webp", (".webp",), "WebP", "WEBP")
    HEIC = ("image/heic", (".heic", ".heif"), "HEIC", "HEIF")
    PDF = ("application/pdf", (".pdf",), "PDF", None)
    OFD = ("application/ofd", (".ofd",), "OFD", None)
    XML = ("application/xml", (".xml",), "XML", None)

    def __init__(
        self, media_type: str, extensions: tuple[str, ...], label: str, pillow_format: str | None
    ) -> None:
        self.media_type = media_type
        self.extensions = extensions
        self.label = label
        self.pillow_format = pillow_format

    @property
    def is_image(self) -> bool:
        """True for the photo types that Pillow decodes."""
        return self.pillow_format is not None


# ISO base media brands of HEIF images with HEVC coding (AVIF and video brands are not accepted).
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})
# Elements a browser would render or run; as the root of an "XML" or image upload they are refused.
_ACTIVE_ROOTS = frozenset(
    {
        "html",
        "svg",
        "script",
        "head",
        "body",
        "iframe",
        "object",
        "embed",
        "img",
        "a",
        "div",
        "meta",
        "link",
        "style",
        "xsl:stylesheet",
        "math",
        "xhtml",
    }
)
_PROLOG = re.compile(r"\s*(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)", re.S | re.I)
_ROOT_NAME = re.compile(r"\s*<([A-Za-z_][\w:.-]*)")


def detect_kind(head: bytes) -> FileKind | None:
    """Return the FileKind the leading bytes show, or None when they show none we accept.

    Raises ``active_content`` for HTML, SVG and other markup a browser would run.
    """
    if head.startswith(b"\xff\xd8\xff"):
        return FileKind.JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return FileKind.PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return FileKind.WEBP
    if head[4:8] == b"ftyp" and _is_heic(head):
        return FileKind.HEIC
    if head.startswith(b"%PDF-"):
        return FileKind.PDF
    if head.startswith(b"PK\x03\x04"):
        # Only the archive's own manifest (OFD.xml) can tell an OFD from a DOCX; the OFD reader
        # checks it. Any other zip is refused there.
        return FileKind.OFD
    markup = _markup_root(head)
    if markup is not None:
        if markup.lower() in _ACTIVE_ROOTS or _looks_like_html(head):
            raise EvidenceRefused("active_content", what=markup.lower()[:20])
        return FileKind.XML
    if _looks_like_html(head):
        raise EvidenceRefused("active_content", what="html")
    return None


def sniff(head: bytes, filename: str | None) -> FileKind:
    """Return the type of an upload from its first bytes (``HEAD_BYTES`` of them suffice).

    Refuses with ``empty`` (no bytes), ``active_content`` (HTML, SVG), ``unsupported_type``
    (anything not on the allow-list) or ``extension_mismatch`` (the name's extension is not one
    allowed for the type found).
    """
    if not head:
        raise EvidenceRefused("empty")
    kind = detect_kind(head)
    if kind is None:
        raise EvidenceRefused("unsupported_type")
    extension = _extension(safe_filename(filename))
    if extension not in kind.extensions:
        if kind is FileKind.OFD:
            # Only the name can say a zip means to be an OFD; a .docx or .zip is just refused.
            raise EvidenceRefused("unsupported_type")
        raise EvidenceRefused("extension_mismatch", extension=extension or "—", actual=kind.label)
    return kind


def safe_filename(name: str | None) -> str:
    """Return ``name`` made safe to show and to store as the original name (never as a path).

    Keeps only the last path component (``/`` and ``\\`` both count), drops control and
    bidirectional-override characters, leading dots and spaces (so no ``..`` or hidden names),
    keeps Unicode letters (``发票.jpg``), and shortens long names keeping their extension.
    Returns ``"upload"`` when nothing is left.
    """
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[/\\]", text)[-1]
    text = "".join(
        " " if char.isspace() else char
        for char in text
        if unicodedata.category(char) not in {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
        or char.isspace()
    )
    text = " ".join(text.split()).lstrip(". ").rstrip(". ")
    if len(text) > MAX_FILENAME_LENGTH:
        extension = _extension(text)
        if len(extension) > 16:
            extension = ""
        text = text[: MAX_FILENAME_LENGTH - len(extension)].rstrip(". ") + extension
    return text or "upload"


def _extension(name: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f".{suffix.lower()}" if dot and stem else ""


def _is_heic(head: bytes) -> bool:
    box_size = int.from_bytes(head[0:4], "big")
    major = head[8:12]
    compatible = {head[i : i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
    if major in _HEIC_BRANDS:
        return True
    return major in _HEIF_GENERIC_BRANDS and bool(compatible & _HEIC_BRANDS)


def _decode_head(head: bytes) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    return head.removeprefix(b"\xef\xbb\xbf").decode("utf-8", errors="replace")


def _markup_root(head: bytes) -> str | None:
    """The name of the first element of a text that starts like XML/HTML, else None."""
    text = _decode_head(head)
    if not text.lstrip().startswith("<"):
        return None
    position = 0
    while True:
        prolog = _PROLOG.match(text, position)
        if prolog is None:
            break
        declaration = prolog.group(0).strip().upper()
        if declaration.startswith("<!DOCTYPE") and "HTML" in declaration:
            return "html"
        position = prolog.end()
    root = _ROOT_NAME.match(text, position)
    if root is None:
        # Markup we cannot name within the head (an unterminated DOCTYPE, a stray "<"): treat
        # it as XML and let the XML reader decide; it forbids DTDs.
        return "?"
    return root.group(1)


def _looks_like_html(head: bytes) -> bool:
    lowered = _decode_head(head[:1024]).lower()
    return any(tag in lowered for tag in ("<html", "<script", "<svg", "<!doctype html", "<body"))
