"""The help centre's contact page shows the company's channels from settings, never made-up ones."""


def _contact_page(app):
    response = app.test_client().get("/help/contact")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_unset_channels_are_not_shown_and_nothing_is_invented(app):
    page = _contact_page(app)
    assert "在线报告和留言" in page
    for channel in ("服务热线", "服务柜台", "电子邮件"):
        assert channel not in page.split("联系方式", 1)[1]
    assert "{{" not in page and "example.com" not in page and "0000-0000" not in page


def test_configured_channels_are_shown_as_set(app_factory):
    app = app_factory(
        SUPPORT_PHONE="010-12345678（工作日 9:00–17:30）",
        SUPPORT_EMAIL="fapiao@company.cn",
        SUPPORT_COUNTER="北京市东城区某街 1 号（工作日 9:00–17:00）",
    )
    page = _contact_page(app)
    assert "服务热线" in page and "010-12345678（工作日 9:00–17:30）" in page
    assert "fapiao@company.cn" in page
    assert "北京市东城区某街 1 号（工作日 9:00–17:00）" in page
    hits = app.test_client().get("/help/search?q=12345678").get_data(as_text=True)
    assert "/help/contact#channels" in hits


def test_a_setting_cannot_inject_markup_or_break_the_table(app_factory):
    app = app_factory(SUPPORT_PHONE="<script>alert(1)</script> | *bold* [x](http://evil)")
    page = _contact_page(app)
    row = page.split("服务热线", 1)[1].split("</tr>", 1)[0]
    assert "<script>" not in page and "&lt;script&gt;" in row
    assert "<em>" not in row and "<a " not in row and row.count("<td") == 2
