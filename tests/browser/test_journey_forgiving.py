"""On a 360 px phone, the customer path forgives mistakes (issue 21): refused uploads said on
the page, a report with every error at once and the input kept, the duplicate report, the
language switch keeping work, the help centre and its search.

Screenshots (tests/screenshots/): forgiving-uploads-refused, forgiving-scan-too-large,
forgiving-report-all-errors, forgiving-duplicate-warning, forgiving-help-check-code (the screen on
arrival at 校验码), forgiving-help-fields-whole-page,
forgiving-header-signed-in, forgiving-language-kept.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, PHONE, assert_fits, screenshot
from tests.conftest import AuthActions

PASSWORD = "Qing-Shan-Lv-Shui-2026"
BIG = 21 * 1024 * 1024  # over the 20 MB file limit


@pytest.fixture
def signed_in(app, live_server, page_factory):
    """A phone page signed in as a customer (registered and verified through the app)."""

    def make(email="kehu.lu@example.com"):
        AuthActions(app.test_client()).register(email, PASSWORD, login=False)
        page = page_factory(PHONE, is_mobile=True, has_touch=True)
        page.goto(live_server + "/auth/login")
        page.get_by_label("电子邮箱").fill(email)
        page.get_by_label("密码").fill(PASSWORD)
        page.get_by_role("button", name="登录").click()
        expect(page.get_by_text("您已登录。")).to_be_visible()
        return page

    return make


def _script_errors(page) -> list[str]:
    # A refused form is answered 422 (or 429): Chromium logs that status, it is no script error.
    return [e for e in page.console_errors if "status of 422" not in e and "status of 429" not in e]


def _fill_report(page, **values):
    fields = {
        "发票代码": "011001900111",
        "发票号码": "12345678",
        "开票日期": "2026-05-01",
        "校验码": "123456",
    }
    fields.update(values)
    for label, value in fields.items():
        page.get_by_label(label, exact=True).fill(value)


def _big_file(folder, name: str, head: bytes) -> str:
    """A file over the size limit, on disk: the browser reads it from there (a buffer would be
    copied through Playwright's protocol, seconds for each)."""
    path = folder / name
    with path.open("wb") as out:
        out.write(head)
        out.truncate(BIG)
    return str(path)


def test_refused_uploads_are_explained_on_the_page(signed_in, live_server, tmp_path):
    page = signed_in()
    page.goto(live_server + "/cases/new")
    _fill_report(page)
    page.get_by_role("button", name="提交报告").click()
    expect(page.locator(".flash-success")).to_contain_text("已收到")
    case_url = page.url

    # Two controls: the camera, and a chooser that takes PDF/OFD/XML too.
    camera = page.get_by_label("拍照")
    expect(camera).to_be_visible()
    assert camera.get_attribute("capture") == "environment"
    chooser = page.get_by_label("选择文件")
    assert chooser.get_attribute("capture") is None and ".ofd" in chooser.get_attribute("accept")

    # A text file renamed .jpg: refused before sending, said beside the control.
    chooser.set_input_files(
        files=[{"name": "fapiao.jpg", "mimeType": "image/jpeg", "buffer": b"just text"}]
    )
    refusal = page.locator(".upload-error")
    expect(refusal).to_contain_text("fapiao.jpg")
    expect(refusal).to_contain_text("不支持这种文件")

    # 21 MB: refused before sending, with what to do; the page is still the case page.
    chooser.set_input_files(_big_file(tmp_path, "big.jpg", b"\xff\xd8\xff"))
    expect(refusal).to_contain_text("文件太大")
    expect(refusal).to_contain_text("请压缩图片或上传 PDF/OFD/XML 原件")
    assert page.url == case_url
    assert_fits(page, PHONE["width"])
    screenshot(page, "forgiving-uploads-refused")

    # A file the browser judges fine goes with the progress bar; the server's word on it
    # (here: received, to be read) is shown on the case page that loads next.
    chooser.set_input_files(
        files=[{"name": "broken.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 broken"}]
    )
    page.get_by_role("button", name="上传", exact=True).click()
    expect(page.locator(".flash").first).to_contain_text("broken.pdf")
    assert page.url.split("#")[0] == case_url

    # The lookup's scan-to-fill: too large, said on the lookup page.
    page.goto(live_server + "/lookup")
    page.get_by_label("选择文件").set_input_files(_big_file(tmp_path, "scan.pdf", b"%PDF-"))
    expect(page.locator(".upload-error")).to_contain_text("文件太大")
    screenshot(page, "forgiving-scan-too-large")
    assert _script_errors(page) == []


def test_the_report_shows_every_error_keeps_the_input_and_a_duplicate_shows_the_case(
    signed_in, live_server
):
    page = signed_in()
    page.goto(live_server + "/cases/new")
    _fill_report(page, 发票代码="0110019", 开票日期="2027-01-01", 校验码="12345")
    page.get_by_label("购买方纳税人识别号（选填）").fill("not-an-id")
    page.get_by_label("其他说明").fill("开票方说已开具，但查验平台查不到。")
    page.get_by_role("button", name="提交报告").click()

    summary = page.locator("#form-summary")
    expect(summary).to_contain_text("请更正以下 4 项")
    for field in ("code", "issue_date", "check_code", "buyer_tax_id"):
        expect(page.locator(f"#{field}-error")).to_be_visible()
    expect(page.locator("#check_code-error")).to_contain_text("校验码")
    expect(page.locator("#number-error")).to_have_count(0)
    expect(page.get_by_label("其他说明")).to_have_value("开票方说已开具，但查验平台查不到。")
    expect(page.get_by_label("发票号码", exact=True)).to_have_value("12345678")
    assert_fits(page, PHONE["width"])
    screenshot(page, "forgiving-report-all-errors")

    # Corrected: accepted (the failed attempt did not use up the allowance).
    _fill_report(page)
    page.get_by_label("购买方纳税人识别号（选填）").fill("")
    page.get_by_role("button", name="提交报告").click()
    expect(page.locator(".flash-success")).to_contain_text("已收到")
    reference = re.search(r"BJ-\d{4}-\d{6}", page.locator(".flash-success").inner_text()).group(0)

    # Report it again: the open case is shown, with a notice, not a second case.
    page.goto(live_server + "/cases/new")
    _fill_report(page)
    page.get_by_role("button", name="提交报告").click()
    expect(page.locator(".flash-warning")).to_contain_text("您已报告过这张发票")
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
    screenshot(page, "forgiving-duplicate-warning")
    page.get_by_role("link", name="我的报告").click()
    expect(page.get_by_role("link", name=reference)).to_have_count(1)
    assert _script_errors(page) == []


def test_the_language_switch_keeps_what_was_typed(signed_in, live_server):
    page = signed_in("yuyan@example.com")
    page.goto(live_server + "/cases/new")
    page.get_by_label("发票号码", exact=True).fill("87654321")
    page.get_by_label("其他说明").fill("换语言也不要丢。")
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_label("Anything else we should know?")).to_have_value("换语言也不要丢。")
    expect(page.get_by_label("Invoice number (发票号码)", exact=True)).to_have_value("87654321")
    screenshot(page, "forgiving-language-kept")

    # A lookup result is shown again, in the new language.
    page.get_by_role("button", name="中文").click()
    page.goto(live_server + "/lookup")
    page.get_by_label("发票代码").fill("011001900111")
    page.get_by_label("发票号码").fill("12345678")
    page.get_by_label("开票日期").fill("2026-05-01")
    page.get_by_label("校验码后 6 位").fill("123456")
    page.get_by_role("button", name="查询发票").click()
    expect(page.locator(".finding-unknown")).to_be_visible()
    # The replay is the page script's work: a click before it has run (the result can show
    # while the page is still loading) is a plain language switch, as it is without scripts.
    page.wait_for_load_state()
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator(".finding-unknown")).to_contain_text("We found no invoice")
    assert _script_errors(page) == []


def test_help_links_and_search_lead_to_the_check_code(page_factory, live_server):
    page = page_factory(PHONE, is_mobile=True, has_touch=True)
    page.goto(live_server + "/lookup")
    link = page.locator('[data-help-for="check_code_last6"]')
    expect(link).to_have_text("在哪里找到？")
    page.goto(live_server + link.get_attribute("href"))
    expect(page.locator("#check-code")).to_be_in_viewport()
    expect(page.get_by_role("img", name=re.compile("增值税普通发票"))).to_be_visible()

    page.goto(live_server + "/help/")
    page.get_by_label("搜索帮助").fill("校验码")
    page.get_by_role("button", name="搜索").click()
    page.get_by_role("link", name="⑥ 校验码").click()
    expect(page.locator("#check-code")).to_be_in_viewport()
    assert_fits(page, PHONE["width"])
    # What the customer sees on arrival (the screen, not the whole page).
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "forgiving-help-check-code.png"))
    screenshot(page, "forgiving-help-fields-whole-page")
    assert _script_errors(page) == []


def test_the_signed_in_header_is_compact_on_a_phone(signed_in, live_server):
    page = signed_in("biaotou@example.com")
    page.goto(live_server + "/cases")
    header = page.locator(".site-header").bounding_box()
    assert header["height"] <= 2 * 56 + 8, f"header is {header['height']}px tall"
    for tab in page.locator(".section-nav a:visible").all():
        box = tab.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], tab.inner_text()
    expect(page.locator(".nav-help")).to_be_visible()  # moved into the top row
    assert_fits(page, PHONE["width"])
    screenshot(page, "forgiving-header-signed-in")
