"""A customer reports a missing invoice with a photo → a reviewer approves → a worker registers
it → the customer sees it registered and the case resolved."""

from __future__ import annotations

import re
from dataclasses import replace

from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, assert_fits, screenshot
from tests.factories import EVIDENCE_SAMPLE, run_workers
from tests.scans.corpus import encode, invoice_page

# The same invoice as the evidence tests, under a number of its own.
SAMPLE = replace(EVIDENCE_SAMPLE, number="61142414")


def test_photo_report_approved_registered_and_resolved(
    live_server, page_factory, sim_app, make_user, tmp_path, tmp_root
):
    # The workers run in this process; they must see the files gunicorn stored.
    sim_app.config["UPLOAD_DIR"] = str(tmp_root / "live-uploads")
    make_user("shenhe@example.com", "reviewer")
    photo = tmp_path / "发票照片.png"
    photo.write_bytes(encode(invoice_page(SAMPLE, width=1200), "PNG"))

    customer = page_factory(PHONE)
    customer.goto(live_server + "/auth/register")
    customer.get_by_label("电子邮箱").fill("baoxiao@example.com")
    customer.get_by_label("密码", exact=True).fill("Qing-Shan-Lv-Shui-2026")
    customer.get_by_label("确认密码").fill("Qing-Shan-Lv-Shui-2026")
    customer.get_by_role("button", name="注册账号").click()
    customer.get_by_label("电子邮箱").fill("baoxiao@example.com")  # then sign in
    customer.get_by_label("密码").fill("Qing-Shan-Lv-Shui-2026")
    customer.get_by_role("button", name="登录").click()
    customer.goto(
        live_server + f"/cases/new?code={SAMPLE.code}&number={SAMPLE.number}"
        "&issue_date=2026-05-01&check_code_last6=114698"
    )
    customer.get_by_role("button", name="提交报告").click()
    reference = re.search(r"BJ-\d{4}-\d{6}", customer.locator(".flash-success").inner_text())[0]

    customer.get_by_label("发票照片、扫描件、PDF、OFD 或 XML 文件").set_input_files(str(photo))
    customer.get_by_role("button", name="上传").click()
    customer.locator(".upload").first.wait_for()
    with sim_app.app_context():
        run_workers()  # the extraction job
    customer.reload()
    expect(customer.get_by_label("发票号码").nth(0)).to_have_value(SAMPLE.number)
    assert_fits(customer, PHONE["width"])
    screenshot(customer, "review-journey-1-customer-evidence")
    customer.get_by_role("button", name="确认无误").click()
    expect(customer.get_by_text("审核员将看到您确认的内容")).to_be_visible()

    staff = page_factory(DESKTOP)
    staff.goto(live_server + "/auth/login")
    staff.get_by_label("电子邮箱").fill("shenhe@example.com")
    staff.get_by_label("密码").fill("Gao-Shan-Liu-Shui-42")
    staff.get_by_role("button", name="登录").click()
    staff.goto(live_server + "/staff/")
    screenshot(staff, "review-journey-2-queue")
    staff.get_by_role("link", name=reference).click()
    staff.get_by_role("button", name="认领此工单").click()
    expect(staff.locator(".viewer-image")).to_be_visible()
    screenshot(staff, "review-journey-3-review-page")
    expect(staff.locator("#approve input[name=number]")).to_have_value(SAMPLE.number)
    staff.locator("#approve input[name=buyer_name]").fill(SAMPLE.buyer_name)
    staff.locator("#approve input[name=tax]").fill("2.84")
    staff.locator("#approve input[name=total]").fill("50.10")
    staff.locator("#approve input[name=buyer_tax_id]").fill(SAMPLE.buyer_tax_id)
    staff.locator("#approve").get_by_role("button", name="批准补录").click()
    expect(staff.get_by_text(f"已批准补录 {reference}")).to_be_visible()
    assert staff.console_errors == []

    with sim_app.app_context():
        run_workers()  # delivers to the registry; its confirmation resolves the case
    customer.reload()
    expect(customer.locator(".page-head")).to_contain_text("已解决")
    expect(customer.get_by_text("已在登记系统登记")).to_be_visible()
    screenshot(customer, "review-journey-4-customer-resolved")
    assert customer.console_errors == []
