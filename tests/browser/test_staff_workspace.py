"""The staff workspace at a 1366 px laptop and a 1920 px desktop (issue 20): the review page's
evidence beside the fields, decision errors beside their fields with the input kept, no page
wider than the screen (after approval too), every staff page checked by axe-core; customer
pages checked by axe-core too.

Screenshots: tests/screenshots/staff-*-1366.png and staff-*-1920.png (BROWSER_ARTIFACTS).
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from portal.extensions import db
from portal.services import cases
from tests.browser.conftest import PHONE, assert_fits, screenshot
from tests.factories import EVIDENCE_SAMPLE, run_workers
from tests.scans.corpus import encode, invoice_page

WIDTHS = [1366, 1920]
PASSWORD = "Gao-Shan-Liu-Shui-42"


def viewport(width: int) -> dict:
    return {"width": width, "height": 900 if width == 1366 else 1080}


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical findings on the page, as readable lines."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — "
        + "; ".join(n["target"][0] for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/auth/login")
    page.get_by_label("电子邮箱").fill(email)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


@pytest.mark.parametrize("width", WIDTHS)
def test_review_page_at_laptop_and_desktop_widths(
    width, live_server, page_factory, sim_app, make_user, tmp_path, tmp_root
):
    from playwright.sync_api import expect

    sim_app.config["UPLOAD_DIR"] = str(tmp_root / "live-uploads")
    make_user("zhuguan@example.com", "supervisor")
    sample = replace(EVIDENCE_SAMPLE, number=f"6114{width:04d}")
    with sim_app.app_context():
        case = cases.open_case(
            cases.parse_claim(
                {"code": sample.code, "number": sample.number, "issue_date": "2026-05-01"}
            ),
            customer=None,
            description="客户说：北京的发票北京系统里没有。",
        )
        reference = case.reference
        db.session.commit()
    photo = tmp_path / "一张很长很长的发票照片文件名_扫描件_2026年5月1日_第一页.png"
    photo.write_bytes(encode(invoice_page(sample, width=1200), "PNG"))

    page = page_factory(viewport(width))
    sign_in(page, live_server, "zhuguan@example.com")
    expect(page).to_have_url(re.compile(r"/staff/$"))  # staff land on their queue
    page.get_by_role("link", name=reference).click()
    page.get_by_role("button", name="认领此工单").click()
    expect(page.locator(".flash-success")).to_contain_text(reference)
    page.locator("#staff-files").set_input_files(str(photo))
    page.locator(".upload-form").get_by_role("button", name="上传", exact=True).click()
    expect(page.locator(".flash-success")).to_contain_text("正在识别")
    with sim_app.app_context():
        run_workers()  # reads the evidence
    page.reload()
    expect(page.locator(".viewer-image")).to_be_visible()

    evidence = page.locator("section.evidence").bounding_box()
    assert evidence["width"] >= 0.4 * width, f"evidence {evidence['width']}px of {width}px"
    image = page.locator(".viewer-image").bounding_box()
    assert image["width"] >= 0.3 * width
    assert_fits(page, width)
    fields = page.locator("table.compare").bounding_box()
    assert fields["x"] >= evidence["x"] + evidence["width"]  # beside the evidence, not below
    decision = page.locator("#approve").bounding_box()
    assert decision["y"] > fields["y"] and abs(decision["x"] - fields["x"]) < 40  # under it
    screenshot(page, f"staff-review-{width}")

    page.get_by_role("button", name="放大").click()
    page.get_by_role("button", name="旋转").click()
    expect(page.locator(".viewer-image")).to_have_attribute("style", re.compile(r"rotate\(90deg"))

    assert serious_violations(page) == []

    # A refused approval: the error beside the field, what was typed kept.
    approve = page.locator("#approve")
    approve.locator("input[name=amount]").fill("四十七块")
    approve.locator("input[name=buyer_name]").fill(sample.buyer_name)
    approve.locator("input[name=buyer_tax_id]").fill(sample.buyer_tax_id)
    approve.locator("input[name=tax]").fill("2.84")
    approve.locator("input[name=total]").fill("50.10")
    approve.get_by_role("button", name="批准补录").click()
    error = page.locator("#amount-error")
    expect(error).to_be_visible()
    assert re.search(r"[\u4e00-\u9fff]", error.inner_text())
    field_box = page.locator("#approve input[name=amount]").bounding_box()
    error_box = error.bounding_box()
    assert 0 <= error_box["y"] - (field_box["y"] + field_box["height"]) < 60  # right under it
    expect(page.locator("#approve input[name=amount]")).to_have_value("四十七块")
    expect(page.locator("#approve input[name=buyer_name]")).to_have_value(sample.buyer_name)
    assert_fits(page, width)
    screenshot(page, f"staff-review-{width}-refused")

    page.locator("#approve input[name=amount]").fill("47.26")
    page.locator("#approve").get_by_role("button", name="批准补录").click()
    expect(page.locator(".flash-success")).to_contain_text(f"已批准补录 {reference}")
    assert_fits(page, width)
    with sim_app.app_context():
        run_workers()  # delivered; the registry's confirmation resolves the case
    page.reload()
    expect(page.locator(".page-head")).to_contain_text("已解决")
    assert page.locator(".claim-bar").count() == 0  # no empty card on a closed case
    assert "可能的重复" not in page.locator("main").inner_text()  # its own invoice is no dupe
    assert_fits(page, width)
    screenshot(page, f"staff-review-{width}-resolved")
    # The refused approval's page is a 422 on purpose; nothing else may fail.
    assert [e for e in page.console_errors if "422" not in e] == []


STAFF_PAGES = [
    ("queue", "/staff/"),
    ("offline-case", "/staff/cases/new"),
    ("dead-letters", "/staff/dead-letters"),
    ("findings", "/staff/findings"),
    ("search", "/staff/search?q=011001900111"),
    ("buyer-links", "/staff/buyer-links"),
    ("dashboard", "/staff/dashboard"),
    ("audit", "/staff/audit"),
    ("mail", "/staff/mail"),
]


@pytest.mark.parametrize("width", WIDTHS)
def test_every_staff_page_fits_and_passes_axe(width, live_server, page_factory, app, make_user):
    make_user("zhuguan@example.com", "supervisor")
    with app.app_context():
        cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}), customer=None
        )
    page = page_factory(viewport(width))
    sign_in(page, live_server, "zhuguan@example.com")
    problems = {}
    for name, path in STAFF_PAGES:
        page.goto(live_server + path)
        assert page.locator("h1").count() >= 1, path
        assert_fits(page, width)
        screenshot(page, f"staff-{name}-{width}")
        found = serious_violations(page)
        if found:
            problems[path] = found
    assert problems == {}
    assert page.console_errors == []


CUSTOMER_PAGES = ["/", "/lookup", "/auth/login", "/auth/register", "/auth/reset"]
SIGNED_IN_PAGES = [
    "/",
    "/cases",
    "/cases/new",
    "/cases/{ref}",
    "/invoices",
    "/buyers",
    "/auth/account",
]


def test_customer_pages_pass_axe(live_server, page_factory, app, make_user):
    from portal.models import User

    customer_id = make_user("kehu@example.com", "customer")
    with app.app_context():
        ref = cases.open_case(
            cases.parse_claim({"code": "011001900111", "number": "12345678"}),
            customer=db.session.get(User, customer_id),
        ).reference
    page = page_factory(PHONE)
    problems = {}
    for path in CUSTOMER_PAGES:
        page.goto(live_server + path)
        found = serious_violations(page)
        if found:
            problems[path] = found
    sign_in(page, live_server, "kehu@example.com")
    for path in SIGNED_IN_PAGES:
        page.goto(live_server + path.format(ref=ref))
        found = serious_violations(page)
        if found:
            problems[path] = found
    assert problems == {}


@pytest.mark.parametrize("width", WIDTHS)
def test_the_admin_pages_fit_and_pass_axe(width, live_server, page_factory, make_user):
    import pyotp

    from tests.conftest import TEST_TOTP_SECRET

    make_user("guanli@example.com", "admin")
    page = page_factory(viewport(width))
    sign_in(page, live_server, "guanli@example.com")
    page.locator("input[name=code]").fill(pyotp.TOTP(TEST_TOTP_SECRET).now())
    page.get_by_role("button", name="继续").click()
    from playwright.sync_api import expect

    expect(page).to_have_url(re.compile(r"/staff/$"))
    page.goto(live_server + "/staff/users")
    expect(page.locator("h1")).to_have_text("员工账号")
    assert_fits(page, width)
    screenshot(page, f"staff-users-{width}")
    assert serious_violations(page) == []
