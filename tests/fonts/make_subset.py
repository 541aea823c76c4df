"""Regenerate ``tests/fonts/NotoSansCJKsc-PortalTestSubset.otf``, the one font the tests draw
with: Noto Sans CJK SC Regular (SIL Open Font License 1.1, ``OFL.txt`` beside this file) cut
down to the characters the generated evidence corpus and the scan benchmark print.

    make test-font                      # from Debian's fonts-noto-cjk (installed by hand)
    make test-font FONT=/path/NotoSansCJKsc-Regular.otf   # or the OTF from the Noto project

fontTools (the dev extra) does the subsetting. The characters are printable ASCII and every
non-ASCII character written in ``SOURCES``: the text they draw comes from their own string
literals and digits, so a new character there is covered once the font is regenerated, and
``tests/scans/test_font.py`` fails until it is.
"""

from __future__ import annotations

import string
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FONT_PATH = HERE / "NotoSansCJKsc-PortalTestSubset.otf"
SOURCES = (
    ROOT / "tests" / "scans" / "corpus.py",
    ROOT / "tests" / "scans" / "layouts.py",
    ROOT / "bench" / "scan_pipeline.py",
)
DEBIAN_FONT = Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
FAMILY = "Noto Sans CJK SC"  # the face taken out of a .ttc collection
# A modified version under the OFL: say so in its name (Noto is not a reserved name).
NEW_FAMILY = "Noto Sans CJK SC Portal Test Subset"


def characters() -> str:
    """Every character the font must have, sorted."""
    wanted = set(string.printable.strip()) | {" "}
    for source in SOURCES:
        wanted |= {ch for ch in source.read_text(encoding="utf-8") if ord(ch) > 127}
    return "".join(sorted(wanted))


def _open(path: Path):
    from fontTools.ttLib import TTCollection, TTFont

    if path.suffix.lower() == ".ttc":
        for face in TTCollection(str(path)).fonts:
            if face["name"].getDebugName(1) == FAMILY:
                return face
        raise SystemExit(f"{path} has no {FAMILY!r} face")
    return TTFont(str(path))


def main(argv: list[str]) -> int:
    from fontTools import subset

    source = Path(argv[0]) if argv else DEBIAN_FONT
    if not source.exists():
        raise SystemExit(
            f"{source} not found: install Debian's fonts-noto-cjk or pass FONT=… "
            "(NotoSansCJKsc-Regular.otf from the Noto CJK project)"
        )
    font = _open(source)
    options = subset.Options()
    options.hinting = False  # smaller; FreeType renders the outlines alone just as well
    options.desubroutinize = True
    options.layout_features = []  # the tests draw plain horizontal text
    options.name_IDs = [0, 1, 2, 3, 4, 5, 6, 7, 13, 14]
    options.name_languages = [0x409]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=characters())
    subsetter.subset(font)
    names = font["name"]
    postscript = NEW_FAMILY.replace(" ", "") + "-Regular"
    for record in names.names:
        if record.nameID in (1, 4):
            record.string = NEW_FAMILY if record.nameID == 1 else f"{NEW_FAMILY} Regular"
        elif record.nameID in (3, 6):
            record.string = postscript
    if "CFF " in font:
        font["CFF "].cff.fontNames = [postscript]
    font.save(str(FONT_PATH))
    print(f"{FONT_PATH.relative_to(ROOT)}: {len(characters())} characters from {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
