"""Where an invoice was issued: GB/T 2260 province-level divisions and separately planned cities.

Invoice codes carry a four-digit division code (``1100`` Beijing, ``3702`` Qingdao) and 数电票
numbers a two-digit code of the issuing tax bureau (``11``). Separately planned cities (计划单列市)
have their own tax bureaus and invoice codes, so ``3702`` is Qingdao, not Shandong; in 数电票
numbers they have two-digit codes of their own that are not province codes (``92`` Qingdao).

Public API:

- ``Region(code, name_zh, name_en, known=True)`` with ``name(locale)`` and ``is_beijing``.
- ``PROVINCES``: two-digit code -> Region; ``PLANNED_CITIES``: four-digit code -> Region;
  ``DIGITAL_PLANNED_CITIES``: a planned city's two-digit 数电票 code -> Region (only the codes
  confirmed on a real invoice or by an official source; see the comment on the table).
- ``BEIJING``: the Region the portal serves.
- ``region_for_division(code) -> Region | None``: the Region a two- or four-digit code names.
- ``region_for_digital(code) -> Region``: the Region of a 数电票 number's digits 3-4; a code we
  cannot name is an unknown Region (``known`` False), never an error: the invoice is still real.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from portal.domain.messages import DEFAULT_LOCALE, resolve_locale


@dataclass(frozen=True)
class Region:
    """A province-level division (two-digit code) or a separately planned city (four digits)."""

    code: str
    name_zh: str
    name_en: str
    known: bool = True

    def name(self, locale: str | None = DEFAULT_LOCALE) -> str:
        """Return the region's name in ``locale`` (Chinese by default)."""
        return self.name_en if resolve_locale(locale) == "en" else self.name_zh

    @property
    def is_beijing(self) -> bool:
        """True for Beijing, the only region whose invoices the Beijing registry holds."""
        return self.code == BEIJING_CODE


BEIJING_CODE = "11"

PROVINCES: Mapping[str, Region] = {
    region.code: region
    for region in (
        Region("11", "北京", "Beijing"),
        Region("12", "天津", "Tianjin"),
        Region("13", "河北", "Hebei"),
        Region("14", "山西", "Shanxi"),
        Region("15", "内蒙古", "Inner Mongolia"),
        Region("21", "辽宁", "Liaoning"),
        Region("22", "吉林", "Jilin"),
        Region("23", "黑龙江", "Heilongjiang"),
        Region("31", "上海", "Shanghai"),
        Region("32", "江苏", "Jiangsu"),
        Region("33", "浙江", "Zhejiang"),
        Region("34", "安徽", "Anhui"),
        Region("35", "福建", "Fujian"),
        Region("36", "江西", "Jiangxi"),
        Region("37", "山东", "Shandong"),
        Region("41", "河南", "Henan"),
        Region("42", "湖北", "Hubei"),
        Region("43", "湖南", "Hunan"),
        Region("44", "广东", "Guangdong"),
        Region("45", "广西", "Guangxi"),
        Region("46", "海南", "Hainan"),
        Region("50", "重庆", "Chongqing"),
        Region("51", "四川", "Sichuan"),
        Region("52", "贵州", "Guizhou"),
        Region("53", "云南", "Yunnan"),
        Region("54", "西藏", "Tibet"),
        Region("61", "陕西", "Shaanxi"),
        Region("62", "甘肃", "Gansu"),
        Region("63", "青海", "Qinghai"),
        Region("64", "宁夏", "Ningxia"),
        Region("65", "新疆", "Xinjiang"),
        Region("71", "台湾", "Taiwan"),
        Region("81", "香港", "Hong Kong"),
        Region("82", "澳门", "Macao"),
    )
}

PLANNED_CITIES: Mapping[str, Region] = {
    region.code: region
    for region in (
        Region("2102", "大连", "Dalian"),
        Region("3302", "宁波", "Ningbo"),
        Region("3502", "厦门", "Xiamen"),
        Region("3702", "青岛", "Qingdao"),
        Region("4403", "深圳", "Shenzhen"),
    )
}

# 数电票 numbers of separately planned cities carry the city's own two-digit bureau code.
# Only codes confirmed on a real invoice are listed; every other code is an unknown region.
# - 92 Qingdao: 数电票 24922000000078112547, issued 2024-12-28 by a Qingdao restaurant and
#   stamped 青岛市税务局 (public sample from hobom/invoicerecognition, kept in
#   tests/scans/real/digital-2024-qingdao.jpg).
# Dalian, Ningbo, Xiamen and Shenzhen also have codes of their own; no real invoice or official
# table of them was found in public sources, so they are read as unknown regions, not guessed.
DIGITAL_PLANNED_CITIES: Mapping[str, Region] = {
    "92": Region("92", "青岛", "Qingdao"),
}

BEIJING = PROVINCES[BEIJING_CODE]


def region_for_division(code: str) -> Region | None:
    """Return the Region of a two-digit province code or a four-digit division code.

    A four-digit code is a separately planned city when it is one, else the province its first
    two digits name (``1100`` and ``3701`` are Beijing and Shandong). None when the province
    part is not a province-level division, or the code is not two or four digits.
    """
    if len(code) == 4:
        city = PLANNED_CITIES.get(code)
        if city is not None:
            return city
    elif len(code) != 2:
        return None
    return PROVINCES.get(code[:2])


def region_for_digital(code: str) -> Region:
    """Return the Region named by a 数电票 number's bureau digits (3-4).

    A province code or a confirmed planned-city code names its Region; any other code is a
    Region with ``known`` False whose names say the code, so that the invoice stays readable.
    """
    region = PROVINCES.get(code) or DIGITAL_PLANNED_CITIES.get(code)
    if region is not None:
        return region
    return Region(code, f"代码为 {code} 的地区", f"the region with code {code}", known=False)
