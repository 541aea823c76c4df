"""A newcomer registers, signs out and in again, and sees the home page on a phone and a desktop."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import DESKTOP, PHONE, assert_fits, screenshot


def test_register_login_and_home_at_phone_and_desktop(live_server, page_factory):
    page = page_factory(PHONE)
    page.goto(live_server + "/")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert_fits(page, PHONE["width"])
    screenshot(page, "home-phone-anonymous")

    page.get_by_role("link", name="注册", exact=True).click()
    page.get_by_label("电子邮箱").fill("xin.yonghu@example.com")
    page.get_by_label("密码", exact=True).fill("password")
    page.get_by_label("确认密码").fill("password")
    page.get_by_role("button", name="注册账号").click()
    expect(page.get_by_text("至少需要 10 个字符")).to_be_visible()  # refused beside the field
    screenshot(page, "register-phone-weak-password")

    page.get_by_label("密码", exact=True).fill("Qing-Shan-Lv-Shui-2026")
    page.get_by_label("确认密码").fill("Qing-Shan-Lv-Shui-2026")
    page.get_by_role("button", name="注册账号").click()
    # The same answer whether or not the address had an account: the mail tells which.
    expect(page.get_by_text("我们已向 xin.yonghu@example.com 发送了一封邮件")).to_be_visible()
    page.get_by_label("电子邮箱").fill("xin.yonghu@example.com")
    page.get_by_label("密码").fill("Qing-Shan-Lv-Shui-2026")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_text("您已登录。")).to_be_visible()
    page.get_by_role("button", name="退出登录").click()
    expect(page.get_by_text("您已退出登录。")).to_be_visible()

    page.get_by_role("link", name="登录", exact=True).first.click()
    page.get_by_label("电子邮箱").fill("xin.yonghu@example.com")
    page.get_by_label("密码").fill("Qing-Shan-Lv-Shui-2026")
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_text("您已登录。")).to_be_visible()
    assert_fits(page, PHONE["width"])
    screenshot(page, "home-phone-signed-in")
    assert page.console_errors == []

    desktop = page_factory(DESKTOP)
    desktop.goto(live_server + "/")
    screenshot(desktop, "home-desktop")
    desktop.get_by_role("button", name="English").click()
    expect(desktop.locator("html")).to_have_attribute("lang", "en")
    desktop.reload()
    expect(desktop.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Your invoice"))
    screenshot(desktop, "home-desktop-english")
