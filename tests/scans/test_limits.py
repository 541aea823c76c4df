from portal.scans.limits import MB, OcrPolicy, ScanLimits, megabytes


def test_defaults_fit_invoice_evidence():
    limits = ScanLimits()
    assert limits.max_bytes == 20 * MB
    assert limits.max_pixels == 50_000_000
    assert limits.ocr is OcrPolicy.FALLBACK


def test_limits_come_from_the_flask_config():
    limits = ScanLimits.from_config(
        {
            "MAX_CONTENT_LENGTH": 5 * MB,
            "SCAN_MAX_PIXELS": "1000",
            "SCAN_OCR": "never",
            "UNRELATED": 1,
        }
    )
    assert limits.max_bytes == 5 * MB
    assert limits.max_pixels == 1000
    assert limits.ocr is OcrPolicy.NEVER
    assert limits.max_zip_members == ScanLimits().max_zip_members


def test_megabytes_reads_like_people_write_limits():
    assert megabytes(20 * MB) == 20
    assert megabytes(MB // 2) == 0.5
