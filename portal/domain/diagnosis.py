"""Why an invoice is, or is not, where the customer looked: ordered findings for a lookup.

``diagnose`` compares what the customer typed (a ``LookupQuery``) with what the ledger and the
registry know, passed in as values, and returns findings, each a stable machine ``code`` with
plain ``params`` and a message in zh_CN or en.

Leak rule. A failed match must not help anyone enumerate other people's invoices. The amount,
the total and the check code are what prove the customer holds the invoice (the issue date
does not: it has a few hundred plausible values). So a mismatch is explained only when the
customer has proved possession: every other field matched and either one of them is such a
proof or the wrong value is itself one (the total typed where the amount was asked, the first
6 digits of the check code instead of the last 6). Any other mismatch gets exactly the answer an
invoice we have never heard of gets (``unknown``, or ``issued_today`` for today's date), so not
even the invoice's existence leaks.

Findings, in the order they can appear:

- ``not_beijing`` (region_code, region_name, region_name_en): from the identity alone.
- ``unknown``: no invoice matches what was typed.
- ``issued_today`` (issue_date, visible_from): registries show an invoice from the next day.
- ``amount_is_total`` (field, entered): the total typed where the amount excluding tax was
  asked (field ``amount``, entered ``total``), or the reverse.
- ``date_mismatch``, ``check_code_mismatch``, ``amount_mismatch`` (field): that one field
  differs from our records.
- ``registered`` (registry_id, registered_at).
- ``pending_registry`` (attempts, next_attempt_at, last_error, registry_available).

Public API:

- ``FindingCode``, ``Finding(code, params)`` with ``message(locale)`` and ``as_dict(locale)``.
- ``LedgerRecord(key, issue_date, amount, total, check_code)``: what the ledger holds.
- ``RegistryState(registry_id, registered_at, attempts, next_attempt_at, last_error)``.
- ``REGISTRY_ERRORS``: the customer-safe reasons ``last_error`` may name.
- ``diagnose(query, *, today, ledger=None, registry=None, registry_available=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from portal.domain.errors import InvoiceRuleError
from portal.domain.messages import DEFAULT_LOCALE, field_label, render_message, resolve_locale
from portal.domain.shanghai_time import format_shanghai, shanghai_date, to_shanghai
from portal.domain.verification import LookupQuery, VerificationField


class FindingCode(StrEnum):
    """The stable machine codes of findings; templates, API clients and tests rely on them."""

    NOT_BEIJING = "not_beijing"
    UNKNOWN = "unknown"
    ISSUED_TODAY = "issued_today"
    AMOUNT_IS_TOTAL = "amount_is_total"
    DATE_MISMATCH = "date_mismatch"
    CHECK_CODE_MISMATCH = "check_code_mismatch"
    AMOUNT_MISMATCH = "amount_mismatch"
    REGISTERED = "registered"
    PENDING_REGISTRY = "pending_registry"
    REGISTRATION_FAILED = "registration_failed"  # every retry failed: staff hold it


_MESSAGES: Mapping[FindingCode, tuple[str, str]] = {
    FindingCode.NOT_BEIJING: (
        "这张发票由{region_name}开具，不是北京的发票，北京市的发票登记系统中不会有它。"
        "请向开票方或其所在地的税务机关查询。",
        "This invoice was issued in {region_name_en}, not in Beijing, so the Beijing invoice "
        "registry will not hold it. Please ask the issuer or the tax authority where it was "
        "issued.",
    ),
    FindingCode.UNKNOWN: (
        "我们没有找到与您填写的信息相符的发票。请逐项核对（例如是否把价税合计填成了不含税金额、"
        "开票日期是否正确）；如果确认无误，请提交报告，我们会尽快处理。",
        "We found no invoice matching what you entered. Please check each field (for example "
        "the amount excluding tax against the total, and the issue date); if everything is "
        "right, please report it and we will look into it.",
    ),
    FindingCode.ISSUED_TODAY: (
        "您填写的开票日期是今天（{issue_date}）。当天开具的发票要到次日才能在登记系统中查到，"
        "请于 {visible_from} 起再查询。",
        "The issue date you entered is today ({issue_date}). Registries show an invoice from "
        "the day after it is issued; please check again from {visible_from}.",
    ),
    FindingCode.AMOUNT_IS_TOTAL: (
        "您填写的似乎是{entered_label}。这张发票需要填写{field_label}，请改正后再查询。",
        "You seem to have entered the {entered_label}; this invoice is looked up by the "
        "{field_label}. Please correct it and try again.",
    ),
    FindingCode.DATE_MISMATCH: (
        "开票日期与我们的记录不一致，请对照发票上的开票日期重新填写。",
        "The issue date does not match our records; please copy it from the invoice.",
    ),
    FindingCode.CHECK_CODE_MISMATCH: (
        "校验码与我们的记录不一致。请填写发票右上角校验码的最后 6 位数字。",
        "The check code does not match our records. Enter the last 6 digits of the check code "
        "printed at the top right of the invoice.",
    ),
    FindingCode.AMOUNT_MISMATCH: (
        "{field_label}与我们的记录不一致。如果您确认与发票上的一致，请提交报告，工作人员会核对。",
        "The {field_label} does not match our records. If it is what the invoice shows, please "
        "report it and our staff will check.",
    ),
    FindingCode.REGISTERED: (
        "该发票已于 {registered_at_display} 在北京市发票登记系统登记，登记编号 {registry_id}。",
        "This invoice was registered with the Beijing invoice registry on "
        "{registered_at_display}, registry ID {registry_id}.",
    ),
    FindingCode.PENDING_REGISTRY: (
        "该发票在我们的台账中，正在排队提交北京市发票登记系统。{progress}{registry_note}"
        "无需提交报告，登记成功后即可查到。",
        "This invoice is in our ledger and queued for the Beijing invoice registry. "
        "{progress}{registry_note}There is no need to report it; it can be found once "
        "registered.",
    ),
    FindingCode.REGISTRATION_FAILED: (
        "我们已 {attempts} 次把这张发票提交给北京市发票登记系统，均未成功（{reason}），"
        "因此目前还查不到。您无需再做什么：工作人员已收到处理任务{task_note}，"
        "将在 {reply_by_display} 前答复您。",
        "We sent this invoice to the Beijing invoice registry {attempts} times and every "
        "attempt failed ({reason}), so it cannot be found yet. There is nothing you need to "
        "do: our staff have a task for it{task_note} and will reply by {reply_by_display}.",
    ),
}

# Customer-safe reasons a registry submission failed. The registry's own error text never
# reaches a customer: it may name internal hosts or other invoices.
REGISTRY_ERRORS: Mapping[str, tuple[str, str]] = {
    "timeout": ("登记系统响应超时", "the registry did not answer in time"),
    "unavailable": ("登记系统暂时不可用", "the registry was unavailable"),
    "rate_limited": ("登记系统繁忙", "the registry was busy"),
    "rejected": (
        "登记系统拒收，工作人员正在核对",
        "the registry refused it; our staff are checking",
    ),
    "conflict": (
        "登记系统中已有内容不同的同号发票，工作人员正在核对",
        "the registry holds different details under the same number; our staff are checking",
    ),
}
_GENERIC_REGISTRY_ERROR = ("登记系统返回错误", "the registry returned an error")

# Fields whose matching value proves the customer holds the invoice (see the module docstring).
_POSSESSION_FIELDS = frozenset(
    {VerificationField.AMOUNT, VerificationField.TOTAL, VerificationField.CHECK_CODE_LAST6}
)
_LAST6 = 6


@dataclass(frozen=True)
class Finding:
    """One thing diagnosis found: a stable ``code`` and the plain ``params`` its message uses.

    ``params`` hold only str, int, bool and None (dates and times as ISO 8601 text in Shanghai
    time), so an API can return them as they are.
    """

    code: FindingCode
    params: dict[str, object] = field(default_factory=dict)

    def message(self, locale: str | None = DEFAULT_LOCALE) -> str:
        """Return the message for a person, in zh_CN (default) or en."""
        code = FindingCode(self.code)
        return render_message(_MESSAGES[code], locale, _display_params(code, self.params, locale))

    def as_dict(self, locale: str | None = DEFAULT_LOCALE) -> dict[str, object]:
        """Return ``{"code", "params", "message"}``, ready for a JSON response."""
        return {
            "code": str(self.code),
            "params": dict(self.params),
            "message": self.message(locale),
        }


@dataclass(frozen=True)
class LedgerRecord:
    """What the ledger holds for the invoice with this ``key`` (as services load it)."""

    key: str
    issue_date: date
    amount: Decimal
    total: Decimal
    check_code: str | None = None


@dataclass(frozen=True)
class RegistryState:
    """Where the invoice's registry submission stands.

    Registered when ``registry_id`` is set. Otherwise ``attempts`` so far, ``next_attempt_at``
    (None once retries are exhausted and staff hold it) and ``last_error``, a key of
    REGISTRY_ERRORS.
    """

    registry_id: str | None = None
    registered_at: datetime | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    exhausted: bool = False  # every retry failed: a dead letter, not waiting for a next try

    @property
    def is_registered(self) -> bool:
        """True once the registry has confirmed the invoice."""
        return self.registry_id is not None


def diagnose(
    query: LookupQuery,
    *,
    today: date,
    ledger: LedgerRecord | None = None,
    registry: RegistryState | None = None,
    registry_available: bool = True,
) -> tuple[Finding, ...]:
    """Return the ordered findings for ``query``.

    ``today`` is the date in Asia/Shanghai (see ``shanghai_time.shanghai_date``); an aware
    datetime is converted. ``ledger`` is the ledger's record under the query's key, None if
    there is none; services may skip loading it when the identity is not a Beijing one.
    ``registry`` is the invoice's submission state (None: not attempted yet).
    ``registry_available`` is False during a registry outage.
    """
    if isinstance(today, datetime):
        today = shanghai_date(today)
    identity = query.identity
    if not identity.is_beijing:
        return (_not_beijing(query),)
    if ledger is None:
        return _not_found(query, today)
    if ledger.key != identity.key:
        raise InvoiceRuleError("ledger_key_mismatch", ledger_key=ledger.key, key=identity.key)

    supplied = query.supplied_fields
    mismatched = [f for f in supplied if not _matches(query, ledger, f)]
    if not mismatched:
        return _status(ledger, registry, today, registry_available)
    if len(mismatched) == 1:
        matched = [f for f in supplied if f not in mismatched]
        hint = _explain_mismatch(mismatched[0], matched, query, ledger)
        if hint is not None:
            return (hint,)
    return _not_found(query, today)


def _not_beijing(query: LookupQuery) -> Finding:
    region = query.identity.region
    return Finding(
        FindingCode.NOT_BEIJING,
        {
            "region_code": query.identity.region_code,
            "region_name": region.name_zh,
            "region_name_en": region.name_en,
        },
    )


def _not_found(query: LookupQuery, today: date) -> tuple[Finding, ...]:
    # Depends on nothing but what was typed, so it cannot tell a mismatch from an absence.
    if query.issue_date == today:
        return (_issued_today(today),)
    return (Finding(FindingCode.UNKNOWN),)


def _issued_today(issue_date: date) -> Finding:
    return Finding(
        FindingCode.ISSUED_TODAY,
        {
            "issue_date": issue_date.isoformat(),
            "visible_from": (issue_date + timedelta(days=1)).isoformat(),
        },
    )


def _matches(query: LookupQuery, ledger: LedgerRecord, field: VerificationField) -> bool:
    if field is VerificationField.ISSUE_DATE:
        return query.issue_date == ledger.issue_date
    if field is VerificationField.AMOUNT:
        return query.amount == ledger.amount
    if field is VerificationField.TOTAL:
        return query.total == ledger.total
    # A ledger row without a check code cannot confirm one, so it never matches.
    return ledger.check_code is not None and ledger.check_code[-_LAST6:] == query.check_code_last6


def _explain_mismatch(
    field: VerificationField,
    matched: list[VerificationField],
    query: LookupQuery,
    ledger: LedgerRecord,
) -> Finding | None:
    """Say which field is wrong only when the customer has proved they hold the invoice."""
    if field is VerificationField.AMOUNT and query.amount == ledger.total:
        return Finding(FindingCode.AMOUNT_IS_TOTAL, {"field": "amount", "entered": "total"})
    if field is VerificationField.TOTAL and query.total == ledger.amount:
        return Finding(FindingCode.AMOUNT_IS_TOTAL, {"field": "total", "entered": "amount"})
    proven = any(f in _POSSESSION_FIELDS for f in matched)
    if field is VerificationField.CHECK_CODE_LAST6:
        # The check code prints as four groups of five; reading it from the wrong end gives the
        # first 6 digits, which only a holder of the invoice can know.
        first_six = ledger.check_code is not None and (
            query.check_code_last6 == ledger.check_code[:_LAST6]
        )
        if proven or first_six:
            return Finding(FindingCode.CHECK_CODE_MISMATCH, {"field": field.value})
        return None
    if not proven:
        return None
    if field is VerificationField.ISSUE_DATE:
        return Finding(FindingCode.DATE_MISMATCH, {"field": field.value})
    return Finding(FindingCode.AMOUNT_MISMATCH, {"field": field.value})


def _status(
    ledger: LedgerRecord,
    registry: RegistryState | None,
    today: date,
    registry_available: bool,
) -> tuple[Finding, ...]:
    if registry is not None and registry.is_registered:
        return (
            Finding(
                FindingCode.REGISTERED,
                {
                    "registry_id": registry.registry_id,
                    "registered_at": _iso(registry.registered_at),
                },
            ),
        )
    # The outbox row is written with the ledger row, so no state means not attempted yet.
    state = registry or RegistryState()
    if state.exhausted:
        # Every retry failed (a dead letter staff hold): say so, not "queued".
        return (
            Finding(
                FindingCode.REGISTRATION_FAILED,
                {"attempts": state.attempts, "last_error": state.last_error},
            ),
        )
    pending = Finding(
        FindingCode.PENDING_REGISTRY,
        {
            "attempts": state.attempts,
            "next_attempt_at": _iso(state.next_attempt_at),
            "last_error": state.last_error,
            "registry_available": registry_available,
        },
    )
    if ledger.issue_date == today:
        return (_issued_today(today), pending)
    return (pending,)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else to_shanghai(moment).isoformat(timespec="seconds")


def _display_params(
    code: FindingCode, params: Mapping[str, object], locale: str | None
) -> dict[str, object]:
    """Add the localised pieces a message needs but an API client does not."""
    english = resolve_locale(locale) == "en"
    values = dict(params)
    if code is FindingCode.AMOUNT_IS_TOTAL:
        values["entered_label"] = field_label(str(params["entered"]), locale)
    elif code is FindingCode.REGISTERED:
        values["registered_at_display"] = _display_time(params.get("registered_at"), english)
    elif code is FindingCode.REGISTRATION_FAILED:
        zh, en = REGISTRY_ERRORS.get(str(params.get("last_error")), _GENERIC_REGISTRY_ERROR)
        values["reason"] = en if english else zh
        reference = params.get("reference")
        values["task_note"] = (
            (f" ({reference})" if english else f"（{reference}）") if reference else ""
        )
        reply_by = params.get("reply_by")
        values["reply_by_display"] = (
            _display_time(reply_by, english)
            if isinstance(reply_by, str)
            else ("the end of the next working day" if english else "下一个工作日结束")
        )
    elif code is FindingCode.PENDING_REGISTRY:
        values["progress"] = _progress(params, english)
        values["registry_note"] = (
            ""
            if params.get("registry_available", True)
            else (
                "The registry is down at the moment; it will be resent automatically once "
                "the registry is back. "
                if english
                else "登记系统目前暂时不可用，恢复后会自动重新提交。"
            )
        )
    return values


def _display_time(iso: object, english: bool) -> str:
    if not isinstance(iso, str):
        return "an unrecorded time" if english else "（时间未记录）"
    return format_shanghai(datetime.fromisoformat(iso))


def _progress(params: Mapping[str, object], english: bool) -> str:
    attempts = params.get("attempts") or 0
    next_attempt = params.get("next_attempt_at")
    last_error = params.get("last_error")
    parts: list[str] = []
    if not attempts:
        parts.append("It has not been sent yet. " if english else "尚未提交。")
    else:
        parts.append(f"{attempts} attempt(s) so far. " if english else f"已尝试 {attempts} 次。")
    if isinstance(last_error, str):
        zh, en = REGISTRY_ERRORS.get(last_error, _GENERIC_REGISTRY_ERROR)
        parts.append(f"Last attempt: {en}. " if english else f"上次未成功：{zh}。")
    if isinstance(next_attempt, str):
        when = _display_time(next_attempt, english)
        parts.append(f"Next attempt: {when}. " if english else f"下次尝试：{when}。")
    elif attempts:
        # Retries are exhausted: a dead letter that staff see and can retry.
        parts.append("Our staff are handling it. " if english else "工作人员正在处理。")
    return "".join(parts)
