"""Regions: GB/T 2260 province-level divisions and the separately planned cities."""

import pytest

from portal.domain.regions import (
    BEIJING,
    DIGITAL_PLANNED_CITIES,
    PLANNED_CITIES,
    PROVINCES,
    region_for_digital,
    region_for_division,
)


def test_every_province_level_division_is_known():
    assert len(PROVINCES) == 34  # 31 mainland divisions, Taiwan, Hong Kong, Macao
    assert {"11", "12", "13", "31", "44", "50", "54", "65", "71", "81", "82"} <= set(PROVINCES)
    assert all(region.name_zh and region.name_en for region in PROVINCES.values())


def test_separately_planned_cities():
    assert {code: city.name_zh for code, city in PLANNED_CITIES.items()} == {
        "2102": "大连",
        "3302": "宁波",
        "3502": "厦门",
        "3702": "青岛",
        "4403": "深圳",
    }


@pytest.mark.parametrize(
    ("code", "name"),
    [
        ("1100", "北京"),
        ("11", "北京"),
        ("1101", "北京"),
        ("3702", "青岛"),
        ("3701", "山东"),
        ("4403", "深圳"),
        ("4400", "广东"),
        ("44", "广东"),
        ("8200", "澳门"),
    ],
)
def test_region_for_division(code, name):
    assert region_for_division(code).name_zh == name


@pytest.mark.parametrize("code", ["", "1", "99", "9900", "110", "110000", "1a00"])
def test_unknown_divisions(code):
    assert region_for_division(code) is None


def test_only_beijing_is_beijing():
    assert BEIJING.is_beijing
    assert [r.code for r in (*PROVINCES.values(), *PLANNED_CITIES.values()) if r.is_beijing] == [
        "11"
    ]


def test_names_by_locale():
    qingdao = PLANNED_CITIES["3702"]
    assert (qingdao.name(), qingdao.name("en"), qingdao.name("zh_CN")) == (
        "青岛",
        "Qingdao",
        "青岛",
    )


def test_digital_bureau_codes_of_planned_cities_are_only_the_confirmed_ones():
    # 92 is confirmed on a real invoice; other planned cities' codes were not found in public
    # sources, so they must stay unknown rather than guessed.
    assert {code: city.name_zh for code, city in DIGITAL_PLANNED_CITIES.items()} == {"92": "青岛"}
    assert not set(DIGITAL_PLANNED_CITIES) & set(PROVINCES)


@pytest.mark.parametrize(("code", "name", "known"), [("11", "北京", True), ("92", "青岛", True)])
def test_region_for_digital_known(code, name, known):
    region = region_for_digital(code)
    assert (region.name_zh, region.known) == (name, known)


@pytest.mark.parametrize("code", ["99", "93", "00", "9"])
def test_region_for_digital_unknown_is_never_beijing(code):
    region = region_for_digital(code)
    assert region.known is False
    assert not region.is_beijing
    assert region.code == code
    assert region.name("en") == f"the region with code {code}"
