"""The corpus draws with the font under tests/fonts/, which has every character it prints."""

from __future__ import annotations

from fontTools.ttLib import TTFont

from tests.fonts.make_subset import FONT_PATH, SOURCES, characters
from tests.scans import corpus

SAMPLES = (corpus.BEIJING_E_ORDINARY, corpus.BEIJING_DIGITAL, corpus.SHANGHAI_DIGITAL)


def _cmap() -> set[str]:
    return {chr(code) for code in TTFont(str(FONT_PATH)).getBestCmap()}


def test_the_corpus_uses_the_committed_font_not_a_system_one():
    assert corpus.FONT_PATH == FONT_PATH and FONT_PATH.is_file()
    assert corpus.font(20).getname()[0] == "Noto Sans CJK SC Portal Test Subset"


def test_every_character_printed_is_in_the_font():
    printed = set()
    for sample in SAMPLES:
        printed |= set("".join(sample.text_lines())) | set(sample.date_text) | set(sample.title)
    missing = sorted(printed - _cmap())
    assert not missing, f"run `make test-font`: the font lacks {''.join(missing)!r}"


def test_every_character_of_the_drawing_sources_is_in_the_font():
    # New text in tests/scans/corpus.py, layouts.py or bench/scan_pipeline.py: regenerate the font.
    missing = sorted(set(characters()) - _cmap())
    assert not missing, f"run `make test-font`: the font lacks {''.join(missing)!r}"
    assert {path.name for path in SOURCES} == {"corpus.py", "layouts.py", "scan_pipeline.py"}
