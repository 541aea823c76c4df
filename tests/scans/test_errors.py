import pickle

import pytest

from portal.scans.errors import REFUSAL_MESSAGES, EvidenceRefused

PARAMS = {
    "limit_mb": 20,
    "extension": ".jpg",
    "actual": "PNG",
    "pixels": 1,
    "limit": 2,
    "what": "JavaScript",
}


@pytest.mark.parametrize("code", sorted(REFUSAL_MESSAGES))
def test_every_refusal_reads_in_chinese_and_english(code):
    refusal = EvidenceRefused(code, **PARAMS)
    chinese, english = refusal.message(), refusal.message("en")
    assert chinese and english and chinese != english
    assert "{" not in chinese + english


def test_unknown_codes_are_a_programming_error():
    with pytest.raises(KeyError):
        EvidenceRefused("no_such_code")


def test_refusals_survive_pickling_for_job_failures():
    # RQ records job failures across processes. Only our own bytes are unpickled here.
    pickled = pickle.dumps(EvidenceRefused("too_large", limit_mb=20))
    refusal = pickle.loads(pickled)  # noqa: S301
    assert refusal.code == "too_large"
    assert "20 MB" in refusal.message("en")
    assert str(refusal).startswith("too_large: ")
