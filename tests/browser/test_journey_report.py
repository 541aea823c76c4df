"""On a phone: look up an unknown invoice → report it (signing up on the way) → see the case."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, assert_fits, screenshot


def test_lookup_unknown_then_report_and_follow_the_case(live_server, page_factory):
    page = page_factory(PHONE)
    page.goto(live_server + "/lookup")
    page.get_by_label("发票代码").fill("011001900111")
    page.get_by_label("发票号码").fill("12345678")
    # The form adapts to the kind: an e-普票 asks for the check code, not the amounts.
    page.locator("#kind-hint").wait_for(state="visible")
    page.get_by_label("不含税金额").wait_for(state="hidden")
    expect(page.get_by_label("校验码后 6 位")).to_be_visible()
    expect(page.locator("#kind-hint")).to_contain_text("增值税电子普通发票")
    page.get_by_label("开票日期").fill("2026-05-01")
    page.get_by_label("校验码后 6 位").fill("123456")
    screenshot(page, "lookup-phone-form")
    page.get_by_role("button", name="查询发票").click()

    expect(page.locator(".finding-unknown")).to_be_visible()
    assert_fits(page, PHONE["width"])
    screenshot(page, "lookup-phone-unknown")
    page.get_by_role("link", name="报告这张发票").click()

    # Not signed in: sign-in page, then "create one", sign in, then back to the prefilled report.
    page.get_by_role("link", name="立即注册").click()
    page.get_by_label("电子邮箱").fill("baogao@example.com")
    page.get_by_label("密码", exact=True).fill("Qing-Shan-Lv-Shui-2026")
    page.get_by_label("确认密码").fill("Qing-Shan-Lv-Shui-2026")
    page.get_by_role("button", name="注册账号").click()
    # Registration says the same whether or not the address had an account: sign in now.
    page.get_by_label("电子邮箱").fill("baogao@example.com")
    page.get_by_label("密码").fill("Qing-Shan-Lv-Shui-2026")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_label("发票号码")).to_have_value("12345678")
    expect(page.get_by_label("开票日期")).to_have_value("2026-05-01")
    page.get_by_label("其他说明").fill("开票方说已开具，但查验平台查不到。")
    assert_fits(page, PHONE["width"])
    screenshot(page, "report-phone-form")
    page.get_by_role("button", name="提交报告").click()

    notice = page.locator(".flash-success").inner_text()
    reference = re.search(r"BJ-\d{4}-\d{6}", notice).group(0)
    expect(page.get_by_role("heading", level=1)).to_contain_text(reference)
    expect(page.get_by_text("我们将在")).to_be_visible()
    assert_fits(page, PHONE["width"])
    screenshot(page, "case-phone")

    page.get_by_role("link", name="我的报告").click()
    expect(page.get_by_role("link", name=reference)).to_be_visible()
    screenshot(page, "cases-phone")
    assert page.console_errors == []
