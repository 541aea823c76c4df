"""Chinese by default, English on request, and the choice sticks."""


def switch(client, language):
    client.get("/")  # the switch is a sessionless form in the header: no token
    return client.post("/language", data={"language": language, "next": "/"})


def test_chinese_by_default(client):
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in html and "发票补录服务平台" in html


def test_switch_to_english_sticks_for_visitors(client):
    response = switch(client, "en")
    assert response.status_code == 302
    html = client.get("/").get_data(as_text=True)
    assert '<html lang="en">' in html and "Invoice Re-entry Portal" in html
    switch(client, "zh_CN")
    assert "发票补录服务平台" in client.get("/").get_data(as_text=True)


def test_signed_in_users_keep_their_language_across_devices(app, auth, client):
    auth.register()
    switch(client, "en")
    other_device = app.test_client()
    from tests.conftest import AuthActions

    AuthActions(other_device).login()
    assert '<html lang="en">' in other_device.get("/").get_data(as_text=True)


def test_unknown_language_is_refused(client):
    switch(client, "xx")
    assert '<html lang="zh-CN">' in client.get("/").get_data(as_text=True)


def test_every_message_has_a_chinese_translation():
    from babel.messages.pofile import read_po

    from tests.conftest import ROOT

    with open(ROOT / "portal/translations/zh_CN/LC_MESSAGES/messages.po", "rb") as f:
        catalog = read_po(f)

    def translated(m):
        return all(m.string) if isinstance(m.string, tuple) else bool(m.string)

    missing = [m.id for m in catalog if m.id and not translated(m)]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not missing and not fuzzy, f"untranslated: {missing} fuzzy: {fuzzy}"


def test_catalog_is_up_to_date_with_the_source(tmp_path):
    # Every translatable string in the code must already be in the Chinese catalog.
    import subprocess
    import sys

    from babel.messages.pofile import read_po

    from tests.conftest import ROOT

    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-o",
            str(pot),
            "portal",
        ],
        cwd=ROOT,
        check=True,
    )
    with open(pot, "rb") as f:
        extracted = {m.id for m in read_po(f) if m.id}
    with open(ROOT / "portal/translations/zh_CN/LC_MESSAGES/messages.po", "rb") as f:
        known = {m.id for m in read_po(f) if m.id}
    assert extracted <= known, f"run `make translations`: {sorted(extracted - known, key=str)}"
