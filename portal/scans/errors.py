"""Why a piece of evidence was refused, said to the person who uploaded it.

Public API:

- ``EvidenceRefused(code, **params)``: an exception with a stable ``code`` (logs, API answers and
  tests match on it) and ``message(locale)`` in zh_CN (default) or en.
- ``REFUSAL_MESSAGES``: every refusal code with its (zh_CN, en) message templates.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

from portal.domain.messages import DEFAULT_LOCALE, render_message

REFUSAL_MESSAGES: Mapping[str, tuple[str, str]] = {
    "empty": (
        "文件是空的（0 字节），请重新选择文件。",
        "The file is empty (0 bytes); please choose it again.",
    ),
    "too_large": (
        "文件太大：上限为 {limit_mb} MB。请压缩图片或上传 PDF/OFD/XML 原件。",
        "The file is too large: the limit is {limit_mb} MB. Please shrink the photo or upload "
        "the original PDF, OFD or XML.",
    ),
    "unsupported_type": (
        "不支持这种文件。请上传 JPEG、PNG、WebP、HEIC 照片，或 PDF、OFD、XML 电子发票。",
        "This kind of file is not accepted. Please upload a JPEG, PNG, WebP or HEIC photo, or "
        "a PDF, OFD or XML e-invoice.",
    ),
    "extension_mismatch": (
        "文件名后缀“{extension}”与文件内容（{actual}）不符，请上传原始文件，不要修改后缀。",
        "The file name ends in “{extension}” but the file is {actual}; please upload the "
        "original file without renaming it.",
    ),
    "corrupt": (
        "文件已损坏或不完整，无法读取。请重新导出或重新拍摄后上传。",
        "The file is damaged or incomplete and cannot be read. Please export or photograph it "
        "again.",
    ),
    "too_many_pixels": (
        "图片尺寸过大（{pixels} 像素，上限 {limit} 像素），请缩小后再上传。",
        "The picture is too large ({pixels} pixels; the limit is {limit}). Please shrink it "
        "and upload it again.",
    ),
    "active_content": (
        "文件包含脚本或可执行内容（{what}），出于安全原因不予接收。",
        "The file contains scripts or other active content ({what}) and is refused for safety.",
    ),
    "xml_entities": (
        "XML 文件包含 DTD、实体声明或外部引用，出于安全原因不予处理。"
        "请上传开票平台导出的原始 XML。",
        "The XML file declares a DTD, entities or external references and is refused for "
        "safety. Please upload the XML exactly as the invoicing platform exported it.",
    ),
    "encrypted": (
        "PDF 文件有密码保护，无法读取。请上传未加密的版本。",
        "The PDF is password-protected and cannot be read. Please upload an unprotected copy.",
    ),
    "archive_too_large": (
        "OFD 文件解压后过大或包含的部件过多，无法处理。",
        "The OFD file unpacks to too much data or too many parts to be processed.",
    ),
    "not_ofd": (
        "这不是有效的 OFD 文件（缺少 OFD.xml）。",
        "This is not a valid OFD file (it has no OFD.xml).",
    ),
}


class EvidenceRefused(ValueError):
    """An uploaded file is refused; ``code`` says why, ``message(locale)`` tells the uploader.

    ``params`` are plain values (str, int) used by the messages; an API may return them as they
    are. Nothing of the file's content is echoed back except short, sanitised descriptions.
    """

    def __init__(self, code: str, **params: object) -> None:
        if code not in REFUSAL_MESSAGES:
            raise KeyError(code)
        super().__init__(code)
        self.code = code
        self.params: dict[str, object] = params

    def message(self, locale: str | None = DEFAULT_LOCALE) -> str:
        """Return the refusal in ``locale`` (zh_CN by default, ``en`` for English)."""
        return render_message(REFUSAL_MESSAGES[self.code], locale, self.params)

    def __str__(self) -> str:
        return f"{self.code}: {self.message('en')}"

    def __reduce__(self):
        # Refusals cross process boundaries (RQ job failures); keep the params when pickled.
        return (functools.partial(type(self), self.code, **self.params), ())
