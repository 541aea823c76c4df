"""POST /api/v1/evidence:read: an invoice file in, fields with their sources out, through the
test client with a real token; hostile files refused as uploads are."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from portal.services import accounts
from tests.scans import corpus, layouts

REAL = Path(__file__).parent / "scans" / "real"
EXPECTED = json.loads((REAL / "expected.json").read_text())


@pytest.fixture
def token(app):
    with app.app_context():
        user = accounts.create_user("app@example.com", "Gao-Shan-Liu-Shui-42", "customer")
        return accounts.issue_api_token(user, "company app")


def read(client, token, data: bytes | None, filename="invoice.pdf", **headers):
    form = {} if data is None else {"file": (io.BytesIO(data), filename)}
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(
        "/api/v1/evidence:read",
        data=form,
        content_type="multipart/form-data",
        headers={**auth, **headers},
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_real_samples_are_read_with_every_printed_field_and_its_source(client, token, name):
    response = read(client, token, (REAL / name).read_bytes(), name)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["readable"] is True
    values = {field: item["value"] for field, item in body["fields"].items()}
    assert {k: values.get(k) for k in EXPECTED[name]} == EXPECTED[name]
    assert all(item["source"] in ("qr", "xml", "text", "ocr") for item in body["fields"].values())
    assert all(0 <= item["confidence"] <= 1 for item in body["fields"].values())


def test_sources_say_where_each_field_came_from(client, token):
    name = "e-ordinary-2018-didi.pdf"
    body = read(client, token, (REAL / name).read_bytes(), name).get_json()
    assert body["fields"]["number"]["source"] == "qr"
    assert body["fields"]["buyer_tax_id"] == {
        "value": "91330000734500338C",
        "source": "text",
        "where": "pdf-text",
        "confidence": 1.0,
    }
    assert {c["code"]: c["ok"] for c in body["checks"]}["totals"] is True
    assert body["conflicts"] == []


def test_disagreements_are_answered_not_hidden(client, token):
    other = corpus.replace(corpus.BEIJING_E_ORDINARY, amount=corpus.Decimal("101.00"))
    data = layouts.pdf(layouts.legacy_pieces(corpus.BEIJING_E_ORDINARY), qr_text=other.qr_text)
    body = read(client, token, data).get_json()
    assert body["conflicts"][0]["field"] == "amount"
    assert [v["source"] for v in body["conflicts"][0]["values"]] == ["qr", "text"]
    checks = {c["code"]: c for c in body["checks"]}
    assert checks["sources_agree"]["ok"] is False and checks["totals"]["ok"] is False


def test_messages_follow_the_clients_language(client, token):
    blank = layouts.pdf([layouts.Piece(40, 40, "收据")])
    chinese = read(client, token, blank).get_json()
    english = read(client, token, blank, **{"Accept-Language": "en"}).get_json()
    assert chinese["readable"] is False and english["readable"] is False
    assert "请手动填写" in chinese["message"]
    assert "please type the fields" in english["message"]


@pytest.mark.parametrize(
    ("data", "filename", "code"),
    [
        (b"", "a.pdf", "empty"),
        (
            corpus.invoice_pdf(
                corpus.BEIJING_E_ORDINARY,
                catalog_extra="/OpenAction << /S /JavaScript /JS (app.alert(1)) >>",
            ),
            "a.pdf",
            "active_content",
        ),
        (corpus.BILLION_LAUGHS, "a.xml", "xml_entities"),
        (corpus.EXTERNAL_ENTITY, "a.xml", "xml_entities"),
        (corpus.SVG, "a.svg", "active_content"),
        (corpus.HTML_PAGE, "a.html", "active_content"),
        (
            corpus.zip_bytes({"OFD.xml": b"<OFD/>", "Doc_0/huge.bin": bytes(80 * 1024 * 1024)}),
            "a.ofd",
            "archive_too_large",
        ),
        (corpus.png_bomb(), "bomb.png", "too_many_pixels"),
        (
            corpus.encode(corpus.invoice_page(corpus.BEIJING_E_ORDINARY), "PNG"),
            "a.pdf",
            "extension_mismatch",
        ),
    ],
)
def test_hostile_files_are_refused_with_a_reason(client, token, data, filename, code):
    response = read(client, token, data, filename, **{"Accept-Language": "en"})
    assert response.status_code == 422
    refusal = response.get_json()["error"]["refusal"]
    assert refusal["code"] == code and refusal["message"]


def test_a_token_is_required(client, token):
    response = read(client, None, b"%PDF-1.7")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert read(client, "not-a-token", b"%PDF-1.7").status_code == 401


def test_the_file_must_come_as_the_file_field(client, token):
    response = client.post(
        "/api/v1/evidence:read",
        data={"other": "x"},
        content_type="multipart/form-data",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 400
    assert read(client, token, None).status_code == 400


def test_reads_are_rate_limited_per_token(app, client, token):
    app.config["RATELIMIT_EVIDENCE_READ"] = "2 per minute"
    data = corpus.einvoice_xml(corpus.BEIJING_DIGITAL)
    assert [read(client, token, data, "a.xml").status_code for _ in range(3)] == [200, 200, 429]
    assert "Retry-After" in read(client, token, data, "a.xml").headers


def test_the_openapi_document_describes_it(client):
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/evidence:read"]["post"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert set(operation["responses"]) == {"200", "400", "401", "413", "422", "429"}
    assert "EvidenceRead" in document["components"]["schemas"]
