"""The customer path that forgives mistakes (issue 21): refused uploads explained on the page
the customer was on, forms that show every error at once and keep what was typed, one open
case per invoice, and failed attempts that do not lock the customer out."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Case, Upload, User
from portal.services import cases
from tests.conftest import AuthActions, csrf_token_from

SMALL = 256 * 1024  # the file limit for these tests: a "too large" file stays small
OVER_BODY = SMALL + 70 * 1024  # over the request limit (the file limit plus 64 KB of form)


@pytest.fixture
def small_app(app_factory, app):
    return app_factory(SCAN_MAX_BYTES=SMALL, MAX_CONTENT_LENGTH=SMALL + 64 * 1024)


@pytest.fixture
def customer(small_app):
    client = small_app.test_client()
    AuthActions(client).register("kehu@example.com")
    return client


@pytest.fixture
def case_ref(small_app, customer):
    with small_app.app_context():
        user = db.session.scalar(select(User))
        claim = cases.parse_claim({"code": "011001900111", "number": "51142414"})
        return cases.open_case(claim, customer=user).reference


def _post_file(client, page_url, action, field, name, data, **headers):
    page = client.get(page_url).get_data(as_text=True)
    # The signed-out lookup's forms carry no session token (only the cross-origin check).
    token = {"csrf_token": csrf_token_from(page)} if "csrf_token" in page else {}
    return client.post(
        action,
        data={**token, field: [(io.BytesIO(data), name)]},
        content_type="multipart/form-data",
        headers=headers,
    )


def test_a_file_over_the_limit_on_the_case_page_is_explained_there(customer, case_ref):
    response = _post_file(
        customer,
        f"/cases/{case_ref}",
        f"/cases/{case_ref}/evidence",
        "files",
        "big.jpg",
        b"\xff\xd8\xff" + b"0" * OVER_BODY,
    )
    assert response.status_code == 303  # back to the page, not a 405 or a bare 413 page
    assert response.headers["Location"].endswith(f"/cases/{case_ref}#evidence")
    page = customer.get(f"/cases/{case_ref}").get_data(as_text=True)
    assert "文件太大" in page and "请压缩图片或上传 PDF/OFD/XML 原件" in page


def test_a_progress_bar_upload_gets_the_page_to_load_and_its_message_waits_there(
    customer, case_ref, small_app
):
    # The page's script sends with XMLHttpRequest: a JSON answer, so the flashed refusal is
    # shown by the page the browser loads next (not spent on a redirect the script follows).
    response = _post_file(
        customer,
        f"/cases/{case_ref}",
        f"/cases/{case_ref}/evidence",
        "files",
        "note.jpg",
        b"just some text, renamed",
        X_Requested_With="XMLHttpRequest",
    )
    assert response.is_json and response.json["redirect"].endswith(f"/cases/{case_ref}#evidence")
    page = customer.get(f"/cases/{case_ref}").get_data(as_text=True)
    assert "note.jpg" in page and "flash-error" in page and "不支持这种文件" in page
    with small_app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Upload)) == 0


def test_too_large_for_the_script_too_is_a_json_redirect_with_the_message(customer, case_ref):
    response = _post_file(
        customer,
        f"/cases/{case_ref}",
        f"/cases/{case_ref}/evidence",
        "files",
        "big.pdf",
        b"%PDF-" + b"0" * OVER_BODY,
        X_Requested_With="XMLHttpRequest",
    )
    assert response.status_code == 413 and response.json["redirect"].endswith("#evidence")
    assert "文件太大" in customer.get(f"/cases/{case_ref}").get_data(as_text=True)


def test_a_scan_too_large_for_the_lookup_is_explained_on_the_lookup_page(small_app):
    client = small_app.test_client()
    response = _post_file(
        client, "/lookup", "/lookup/scan", "file", "photo.jpg", b"\xff\xd8\xff" + b"0" * OVER_BODY
    )
    assert response.status_code == 303 and "/lookup" in response.headers["Location"]
    page = client.get("/lookup").get_data(as_text=True)
    assert "文件太大" in page and "发票号码" in page  # the form is there to go on with


@pytest.mark.parametrize(
    "referrer, back",
    [
        ("http://localhost/help/photos?x=1", "/help/photos?x=1"),  # the page the file came from
        ("http://localhost//evil.example/x", None),  # same host, but a path that leaves it
        ("https://evil.example/help/", None),  # another site
    ],
)
def test_a_too_large_body_goes_back_only_to_a_page_of_this_site(small_app, referrer, back):
    response = small_app.test_client().post(
        "/auth/login",
        data={"email": "x@example.com", "password": "0" * OVER_BODY},
        headers={"Referer": referrer},
    )
    if back is None:
        assert response.status_code == 413 and "Location" not in response.headers
        assert "文件太大" in response.get_data(as_text=True)
    else:
        assert response.status_code == 303 and response.headers["Location"] == back


def test_upload_forms_offer_a_camera_and_a_file_chooser_with_the_servers_limits(customer, case_ref):
    for url in (f"/cases/{case_ref}", "/lookup"):
        page = customer.get(url).get_data(as_text=True)
        assert "拍照" in page and "选择文件" in page
        assert 'accept="image/*" capture="environment"' in page
        chooser = page.split('class="upload-control upload-choose"')[1].split("</label>")[0]
        assert "capture" not in chooser and ".pdf" in chooser and ".ofd" in chooser
        assert f'data-max-bytes="{SMALL}"' in page and "文件太大" in page


def test_the_lookup_scan_takes_the_file_from_whichever_control_was_used(client, app):
    response = client.post(
        "/lookup/scan",
        data={
            "file": [(io.BytesIO(b""), ""), (io.BytesIO(b"plain text"), "x.txt")],
        },
        content_type="multipart/form-data",
    )
    page = response.get_data(as_text=True)
    assert "不支持这种文件" in page  # the second control's file was read, and refused clearly


REPORT = {
    "code": "011001900111",
    "number": "12345678",
    "issue_date": "2026-05-01",
    "amount": "100.00",
    "check_code": "123456",
    "contact_preference": "email",
    "description": "开票方说已经开了，但查验不到。",
}


def _report(client, files=None, **fields):
    token = csrf_token_from(client.get("/cases/new").get_data(as_text=True))
    data = {"csrf_token": token, **REPORT, **fields}
    if files:
        data["files"] = files
    return client.post("/cases/new", data=data, content_type="multipart/form-data")


def _error_of(page: str, field: str) -> str:
    marker = f'id="{field}-error"'
    assert marker in page, f"no error shown under {field}"
    return page.split(marker, 1)[1].split("</p>", 1)[0]


def test_the_report_form_shows_every_error_at_once_beside_its_field_and_keeps_the_input(
    auth, client
):
    auth.register()
    response = _report(
        client,
        code="0110019",  # too short
        issue_date="2027-01-01",  # after tomorrow
        check_code="12345",  # five digits
        buyer_tax_id="not-an-id",
        amount="12,3x",
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field in ("code", "issue_date", "check_code", "buyer_tax_id", "amount"):
        _error_of(page, field)
    assert "校验码" in _error_of(page, "check_code")  # under 校验码, not under 发票号码
    assert 'id="number-error"' not in page
    assert "2000-01-01" in _error_of(page, "issue_date")
    assert "请更正以下 5 项" in page
    assert "开票方说已经开了，但查验不到。" in page and 'value="12345678"' in page


def test_a_file_chosen_for_a_refused_report_must_be_chosen_again_and_the_page_says_so(auth, client):
    auth.register()
    response = _report(
        client, files=[(io.BytesIO(b"%PDF-1.4 x"), "invoice.pdf")], issue_date="1999-12-31"
    )
    assert response.status_code == 422
    assert "请重新选择照片或文件" in response.get_data(as_text=True)


def test_the_report_takes_the_evidence_in_the_same_step(auth, client, app):
    from tests.scans.corpus import BEIJING_E_ORDINARY, encode, invoice_page

    auth.register()
    png = encode(invoice_page(BEIJING_E_ORDINARY, width=600), "PNG")
    response = _report(client, files=[(io.BytesIO(png), "发票.png")])
    assert response.status_code == 302
    with app.app_context():
        upload = db.session.scalar(select(Upload))
        assert upload is not None and upload.case.claimed_number == "12345678"


def test_only_accepted_reports_count_and_failed_attempts_are_throttled_generously(app_factory, app):
    limited = app_factory(RATELIMIT_CASE_CREATE="2 per hour", RATELIMIT_CASE_ATTEMPTS="7 per hour")
    client = limited.test_client()
    AuthActions(client).register()
    for _ in range(4):  # corrections: refused by the rules, never counted as reports
        assert _report(client, issue_date="2027-01-01").status_code == 422
    assert _report(client).status_code == 302
    assert _report(client, number="12345679").status_code == 302
    limited = _report(client, number="12345670", description="第三张")
    assert limited.status_code == 429  # two accepted an hour: the form is kept, with why
    assert "第三张" in limited.get_data(as_text=True)
    assert _report(client, number="").status_code == 429  # and all attempts are capped too


def test_reporting_an_invoice_with_an_open_case_shows_that_case(auth, client, app):
    auth.register()
    first = _report(client).headers["Location"]
    again = _report(client, description="第二次")
    assert again.status_code == 303 and again.headers["Location"] == first
    page = client.get(first).get_data(as_text=True)
    assert "您已报告过这张发票" in page and first.rsplit("/", 1)[-1] in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Case)) == 1
        case = db.session.scalar(select(Case))
        case.state = "resolved"  # once closed, the same invoice can be reported again
        db.session.commit()
    assert _report(client).status_code == 302


def test_the_report_asks_a_fully_digital_invoice_only_for_what_it_has(auth, client):
    auth.register()
    answer = client.get("/lookup/fields?code=&number=24112000000136634917").json
    assert answer["needs_code"] is False and "check_code_last6" not in answer["fields"]
    assert "amount" not in answer["fields"] and "total" in answer["fields"]
    page = client.get("/cases/new").get_data(as_text=True)
    for name in ("code", "amount", "total", "check_code_last6"):
        assert f'data-lookup-field="{name}"' in page  # what lookup.js shows or hides


LOOKUP_INVOICE_FIELDS = {"code", "number", "issue_date", "amount", "total", "check_code_last6"}
REPORT_INVOICE_FIELDS = {"code", "number", "issue_date", "amount", "total", "check_code"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/lookup", LOOKUP_INVOICE_FIELDS | {"qr_text"}),
        ("/cases/new", REPORT_INVOICE_FIELDS | {"buyer_tax_id"}),
    ],
)
def test_every_lookup_and_report_field_has_a_help_link_that_resolves(auth, client, url, expected):
    import re

    auth.register()
    page = client.get(url).get_data(as_text=True)
    links = dict(
        (name, href)
        for href, name in re.findall(
            r'class="field-help-link" href="([^"]+)" data-help-for="(\w+)"', page
        )
    )
    assert set(links) == expected
    assert "在哪里找到？" in page
    for name, href in links.items():
        path, anchor = href.split("#")
        help_page = client.get(path)
        assert help_page.status_code == 200, href
        assert f'id="{anchor}"' in help_page.get_data(as_text=True), f"{name}: {href}"


def test_the_help_centre_has_its_pages_in_both_languages_with_pictures(client):
    from portal.services import helpcentre

    for slug in helpcentre.TOPICS:
        zh = client.get(f"/help/{slug}")
        assert zh.status_code == 200
    fields = client.get("/help/fields").get_data(as_text=True)
    assert "校验码" in fields and "/static/img/help/ordinary.png" in fields
    import re

    pictures = set(re.findall(r'src="(/static/img/help/[\w-]+\.png)"', fields))
    assert len(pictures) == 4  # three kinds of invoice and a close-up of the check code
    for picture in pictures:
        assert client.get(picture).status_code == 200, picture
    client.set_cookie("lang", "en")
    assert "Where each field is printed" in client.get("/help/fields").get_data(as_text=True)
    assert client.get("/help/nothing-here").status_code == 404


def test_the_help_search_finds_the_section_and_says_when_nothing_matches(client):
    page = client.get("/help/search?q=校验码").get_data(as_text=True)
    assert "/help/fields#check-code" in page
    none = client.get("/help/search?q=zzzyyyxxx").get_data(as_text=True)
    assert "帮助中没有" in none and "/help/contact" in none


def _dead_invoice(app):
    from portal.models import Submission
    from tests import factories

    with app.app_context():
        (invoice,) = factories.issued()
        submission = db.session.scalar(
            select(Submission).where(Submission.invoice_id == invoice.id)
        )
        submission.state, submission.attempts = "dead", 12
        submission.next_attempt_at, submission.last_error_kind = None, "unavailable"
        db.session.commit()
        return {
            "code": invoice.code,
            "number": invoice.number,
            "issue_date": invoice.issue_date.isoformat(),
            "check_code_last6": "65431824771847114698"[-6:],
        }


def _look_up(client, **fields):
    return client.post("/lookup", data=fields)


def test_a_dead_invoice_is_explained_honestly_and_opens_one_staff_task(app, client):
    from portal.models import AuditEvent

    fields = _dead_invoice(app)
    page = _look_up(client, **fields).get_data(as_text=True)
    assert "finding-registration_failed" in page and "正在排队" not in page
    assert "12 次" in page and "均未成功" in page and "工作人员已收到处理任务" in page
    assert "登记系统运行正常" not in page and "无需提交报告" not in page
    with app.app_context():
        task = db.session.scalar(select(Case))
        assert task.channel == "system" and task.claimed_key.endswith(fields["number"])
        assert task.reference in page and "前答复您" in page
        opened = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "case.opened")
        ).all()
        assert len(opened) == 1
    _look_up(client, **fields)  # looked up again: the same task, not a second one
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Case)) == 1


def test_switching_language_on_a_lookup_result_looks_it_up_again_in_that_language(app, client):
    fields = _dead_invoice(app)
    _look_up(client, **fields)
    switched = client.post(
        "/language",
        data={"language": "en", "next": "/lookup", "replay": "1", **fields},
    )
    assert switched.status_code == 307 and switched.headers["Location"] == "/lookup"
    again = client.post(
        "/lookup",
        data={"language": "en", "next": "/lookup", "replay": "1", **fields},
    ).get_data(as_text=True)
    assert "every attempt failed" in again and 'lang="en"' in again


def test_switching_language_elsewhere_returns_to_the_same_page(client):
    switched = client.post("/language", data={"language": "en", "next": "/help/fields?x=1"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/help/fields?x=1"


def test_the_rating_scale_is_labelled_as_in_the_mail(client):
    page = client.get("/rate/some-token?score=4").get_data(as_text=True)
    for label in ("很不满意", "不满意", "一般", "满意", "非常满意"):
        assert f'<span class="star-label">{label}</span>' in page


def test_error_pages_speak_plainly_and_lead_back(client):
    response = client.get("/cases/nothing/here", headers={"Referer": "http://localhost/help/"})
    page = response.get_data(as_text=True)
    assert response.status_code == 404
    assert 'class="error-code"' not in page and ">404<" not in page
    assert "返回刚才的页面" in page and 'href="http://localhost/help/"' in page
    elsewhere = client.get("/nothing", headers={"Referer": "https://evil.example/"})
    assert "返回刚才的页面" not in elsewhere.get_data(as_text=True)
