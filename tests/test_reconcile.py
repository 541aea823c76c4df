"""Reconciliation of the ledger with the registry's listing: the simulator over real HTTP, the
real database (SQLite or PostgreSQL), real Redis and RQ workers for the resubmissions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from portal.cli.reconcile import reconcile_cli
from portal.domain.fields import WIRE_FIELDS
from portal.extensions import db
from portal.models import (
    Alert,
    AuditEvent,
    Invoice,
    RegistryState,
    Submission,
    SubmissionState,
    utcnow,
)
from portal.models.reconciliation import (
    FindingKind,
    ReconciliationFinding,
    ReconciliationRun,
    ReconciliationStaging,
    RunKind,
    RunState,
)
from portal.registry import RegistryClient
from portal.registry.client import RegistryError
from portal.services import reconcile
from portal.services.registry_link import client as registry_client
from tests import factories
from tests.factories import run_workers


@pytest.fixture
def recon_app(delivery_app):
    """The delivery app with small listing pages and no clock-skew margin (the simulator shares
    our clock), so a handful of invoices spans several pages."""
    delivery_app.config.update(
        RECONCILE_PAGE_SIZE=5,
        RECONCILE_CLOCK_SKEW_SECONDS=0,
        RECONCILE_CHUNK=3,
        RECONCILE_FULL_EVERY=86400,
    )
    return delivery_app


@pytest.fixture
def listing_calls(recon_app, monkeypatch):
    """Record the ``since`` of every listing request; ``fail_on`` makes call N meet an outage."""
    registry = registry_client()
    real = registry.list_invoices
    calls = ListingCalls()
    plan = calls.plan

    def listed(since=None, limit=1000):
        calls.append(since)
        if plan["fail_on"] == len(calls):
            plan["sim"].state.set_faults({"outage": True})
        return real(since, limit)

    monkeypatch.setattr(registry, "list_invoices", listed)
    return calls


class ListingCalls(list):
    """The ``since`` of each listing request, in order; ``plan`` arranges a fault."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: dict = {"fail_on": None, "sim": None}


def delivered(count: int, **overrides) -> list[Invoice]:
    """Issue invoices and let the workers register them; the ledger then says registered."""
    rows = factories.issued(count, **overrides)
    run_workers()
    for row in rows:
        db.session.refresh(row)
        assert row.registry_state == RegistryState.REGISTERED
    return rows


def lost_by_registry(**overrides) -> Invoice:
    """An invoice the ledger saw registered that the registry does not list (any more)."""
    row = factories.invoice(
        registry_state=RegistryState.REGISTERED,
        registry_id="BJR999999999999",
        registered_at=utcnow() - timedelta(hours=1),
        **overrides,
    )
    db.session.commit()
    return row


def put_payload(**overrides) -> dict:
    """An invoice as the registry protocol carries it, like the factory's."""
    return {
        "code": factories.BEIJING_CODE,
        "number": "77770001",
        "kind": "e_ordinary",
        "issue_date": "2026-05-01",
        "amount": "100.00",
        "tax": "6.00",
        "total": "106.00",
        "buyer_tax_id": factories.BUYER_TAX_ID,
        "buyer_name": "北京示例科技有限公司",
        "seller_tax_id": factories.SELLER_TAX_ID,
        "check_code": "65431824771847114698",
        **overrides,
    }


def put_directly(registry_sim, **overrides) -> dict:
    """Register an invoice at the registry behind the ledger's back; returns its payload."""
    payload = put_payload(**overrides)
    assert RegistryClient(registry_sim.url).put_invoice(payload).ok
    return payload


def findings(kind: str | None = None) -> list[ReconciliationFinding]:
    query = select(ReconciliationFinding).order_by(ReconciliationFinding.id)
    if kind:
        query = query.where(ReconciliationFinding.kind == kind)
    return db.session.scalars(query).all()


def actions() -> list[str]:
    return db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()


# --------------------------------------------------------------------------------------------
# The three kinds of finding.


def test_an_invoice_the_registry_lost_is_resubmitted_and_delivered(recon_app, registry_sim):
    delivered(7)
    lost = lost_by_registry()
    (queued,) = factories.issued()  # in the outbox, not yet delivered: not "missing"

    summary = reconcile.run(full=True)

    assert summary.kind == RunKind.FULL and summary.state == RunState.SUCCEEDED
    assert summary.registry_rows == 7 and summary.pages == 2
    assert summary.ledger_rows == 8  # the registered ones; the queued one is the outbox's
    assert (summary.missing_at_registry, summary.resubmitted) == (1, 1)
    assert (summary.mismatched, summary.unknown_to_ledger) == (0, 0)
    db.session.expire_all()
    assert lost.registry_state == RegistryState.PENDING
    resubmission = lost.submissions[-1]
    assert resubmission.reason == "reconcile" and resubmission.state == SubmissionState.QUEUED
    (finding,) = findings(FindingKind.MISSING)
    assert finding.invoice_key == lost.key and finding.details["resubmitted"] is True
    assert finding.resolved_at is None
    assert "invoice.reconcile_resubmitted" in actions()
    assert db.session.scalar(select(func.count()).select_from(ReconciliationStaging)) == 0

    run_workers()  # the outbox delivers it (and the queued one)
    db.session.expire_all()
    assert lost.registry_state == RegistryState.REGISTERED
    assert queued.registry_state == RegistryState.REGISTERED
    assert registry_sim.state.find(lost.key) is not None

    again = reconcile.run(full=True)
    assert (again.registry_rows, again.missing_at_registry, again.resubmitted) == (9, 0, 0)
    db.session.expire_all()
    assert finding.resolved_at is not None  # the registry lists it now


def test_an_invoice_with_a_live_delivery_is_not_resubmitted_twice(recon_app, registry_sim):
    delivered(2)
    lost = lost_by_registry()
    db.session.add(Submission(invoice=lost, state=SubmissionState.RETRY_SCHEDULED))
    db.session.commit()

    summary = reconcile.run(full=True)

    assert (summary.missing_at_registry, summary.resubmitted) == (1, 0)
    (finding,) = findings(FindingKind.MISSING)
    assert finding.details == {"resubmitted": False, "reason": "a delivery is already live"}
    db.session.expire_all()
    assert len(lost.submissions) == 1 and lost.registry_state == RegistryState.REGISTERED


def test_different_fields_at_the_registry_become_a_staff_task(recon_app, registry_sim):
    invoices = delivered(6)
    changed = invoices[3]
    changed.buyer_name = "北京另一家公司"  # the ledger was corrected after registration
    changed.amount, changed.total = Decimal("90.00"), Decimal("96.00")
    db.session.commit()

    summary = reconcile.run(full=True)

    assert (summary.mismatched, summary.missing_at_registry, summary.unknown_to_ledger) == (1, 0, 0)
    (task,) = findings(FindingKind.MISMATCH)
    assert task.invoice_key == changed.key and task.resolved_at is None
    assert task.details["fields"] == ["amount", "total", "buyer_name"]
    assert task.details["ledger"]["amount"] == "90.00"
    assert task.details["registry"] == {
        "amount": "100.00",
        "total": "106.00",
        "buyer_name": "北京示例科技有限公司",
    }
    db.session.expire_all()
    assert changed.registry_state == RegistryState.REGISTERED  # nothing resubmitted
    assert "reconcile.finding_opened" in actions()

    # Seen again: counted, but staff get no second task for it.
    assert reconcile.run(full=True).mismatched == 1
    assert len(findings(FindingKind.MISMATCH)) == 1

    # Put right in the ledger: the next run closes the task.
    changed.buyer_name = "北京示例科技有限公司"
    changed.amount, changed.total = Decimal("100.00"), Decimal("106.00")
    db.session.commit()
    assert reconcile.run(full=True).mismatched == 0
    db.session.expire_all()
    assert task.resolved_at is not None
    assert reconcile.open_finding_counts() == {}


def test_an_invoice_unknown_to_the_ledger_is_reported_with_an_alert(recon_app, registry_sim):
    delivered(4)
    stranger = put_directly(registry_sim, number="88880001", buyer_name="手写发票公司")

    summary = reconcile.run(full=True)

    assert (summary.unknown_to_ledger, summary.mismatched, summary.missing_at_registry) == (1, 0, 0)
    (report,) = findings(FindingKind.UNKNOWN)
    key = f"{factories.BEIJING_CODE}-88880001"
    assert report.invoice_key == key
    assert report.details["registry"]["buyer_name"] == stranger["buyer_name"]
    assert report.details["registry_id"].startswith("BJR")
    (alert,) = db.session.scalars(select(Alert)).all()
    assert alert.kind == "reconcile_unknown" and key in alert.message
    assert alert.subject_id == str(summary.id)

    # Reported once; once entered into the ledger, the report is closed.
    assert reconcile.run(full=True).unknown_to_ledger == 1
    assert len(findings(FindingKind.UNKNOWN)) == 1
    assert db.session.scalar(select(func.count()).select_from(Alert)) == 1
    factories.invoice(number="88880001", buyer_name="手写发票公司")
    db.session.commit()
    assert reconcile.run(full=True).unknown_to_ledger == 0
    db.session.expire_all()
    assert report.resolved_at is not None


def test_money_is_compared_as_decimals_not_text(recon_app, registry_sim):
    # The registry writes "6.2" as "6.20"; the ledger holds Decimal("6.2").
    put_directly(registry_sim, number="12340001", amount="100", tax="6.2", total="106.2")
    factories.invoice(
        number="12340001",
        amount=Decimal("100"),
        tax=Decimal("6.2"),
        total=Decimal("106.2"),
        registry_state=RegistryState.REGISTERED,
        registered_at=utcnow() - timedelta(minutes=5),
    )
    db.session.commit()
    summary = reconcile.run(full=True)
    assert (summary.mismatched, summary.unknown_to_ledger, summary.missing_at_registry) == (0, 0, 0)


def test_staging_rows_normalise_what_the_registry_sends():
    row = reconcile.staging_row(
        7,
        {
            "key": "011001900111-00000001",
            "registry_id": "BJR1",
            "code": "011001900111",
            "number": "00000001",
            "kind": "e_ordinary",
            "issue_date": "2026-02-30",
            "amount": "100.5",
            "tax": "1e3",
            "total": None,
            "buyer_tax_id": None,
            "buyer_name": "A\x00B",
            "seller_tax_id": "S",
            "check_code": 12,
        },
    )
    named = dict(zip(("run_id", "key", "registry_id", *WIRE_FIELDS), row, strict=True))
    assert named["amount"] == Decimal("100.5")
    # Unreadable values become NULL, which compares as different from any ledger value.
    assert named["issue_date"] is None and named["tax"] is None and named["total"] is None
    assert named["buyer_tax_id"] == "" and named["check_code"] == "12"
    assert "\x00" not in named["buyer_name"]
    keyless = reconcile.staging_row(7, {"code": "", "number": "2" * 20})
    assert keyless[1] == "2" * 20


def test_copy_lines_match_the_typed_rows_and_escape_what_copy_would_misread():
    record = {
        "key": "011001900111-00000001",
        "registry_id": "BJR1",
        **put_payload(number="00000001"),
    }
    fast = reconcile.copy_line(3, record)
    # The fast path gives exactly what the checked, typed path would.
    assert fast == reconcile.staging._copy_line_checked(3, record)
    head = ["3", "011001900111-00000001", "BJR1", "011001900111", "00000001", "e_ordinary"]
    assert fast.split("\t")[:8] == [*head, "2026-05-01", "100.00"]
    awkward = {**record, "buyer_name": "A\tB\\C\nD", "registry_id": None, "total": "1.234"}
    fields = reconcile.copy_line(3, awkward).split("\t")
    assert fields[2] == "\\N" and fields[9] == "\\N"  # NULL: absent id, unreadable money
    assert fields[11] == "A\\tB\\\\C\\nD"
    assert reconcile.copy_line(3, {**record, "issue_date": "2026-02-30"}).split("\t")[6] == "\\N"


def test_awkward_text_goes_through_staging_unchanged(recon_app, registry_sim):
    name = "北京\t示例\\科技\n有限公司"
    put_directly(registry_sim, number="55550001", buyer_name=name)
    factories.invoice(
        number="55550001",
        buyer_name=name,
        registry_state=RegistryState.REGISTERED,
        registered_at=utcnow() - timedelta(minutes=5),
    )
    db.session.commit()
    put_directly(registry_sim, number="55550002", buyer_name=name)  # unknown to the ledger

    summary = reconcile.run(full=True)

    assert (summary.mismatched, summary.unknown_to_ledger, summary.missing_at_registry) == (0, 1, 0)
    (report,) = findings(FindingKind.UNKNOWN)
    assert report.details["registry"]["buyer_name"] == name


# --------------------------------------------------------------------------------------------
# Incremental runs, crashes and the lock.


def test_an_incremental_run_reads_only_new_registry_rows(recon_app, registry_sim, listing_calls):
    delivered(7)
    first = reconcile.run()
    assert first.kind == RunKind.FULL  # nothing to continue from yet
    assert listing_calls == [None, "5"] and (first.cursor_end, first.offset_end) == ("5", 2)

    listing_calls.clear()
    delivered(3)
    put_directly(registry_sim, number="88880002")
    lost_by_registry()  # an incremental run cannot see what is missing; the next full one will
    second = reconcile.run()

    assert second.kind == RunKind.INCREMENTAL
    # It re-reads the last page of the previous run, skipping the 2 records already compared.
    assert listing_calls == ["5", "10"]
    assert second.registry_rows == 4 and second.ledger_rows == 3
    assert (second.unknown_to_ledger, second.missing_at_registry) == (1, 0)

    listing_calls.clear()
    quiet = reconcile.run()
    assert quiet.kind == RunKind.INCREMENTAL and quiet.registry_rows == 0
    assert listing_calls == ["10"]

    full = reconcile.run(full=True)
    assert full.registry_rows == 11 and full.missing_at_registry == 1


def test_a_full_pass_comes_round_again(recon_app, registry_sim):
    delivered(2)
    assert reconcile.run().kind == RunKind.FULL
    assert reconcile.run().kind == RunKind.INCREMENTAL
    recon_app.config["RECONCILE_FULL_EVERY"] = 0
    assert reconcile.run().kind == RunKind.FULL


def test_a_registry_fault_mid_listing_is_resumed_from_the_stored_cursor(
    recon_app, registry_sim, listing_calls
):
    delivered(23)
    lost_by_registry()
    listing_calls.plan.update(fail_on=3, sim=registry_sim)  # the third page meets an outage

    with pytest.raises(RegistryError):
        reconcile.run(full=True)

    failed = db.session.scalar(select(ReconciliationRun))
    assert failed.state == RunState.FAILED and failed.error.startswith("registry: http_503")
    assert failed.registry_rows == 10 and failed.pages == 2
    assert failed.cursor_current == "10" and failed.listed_at is None
    assert "reconcile.run_failed" in actions()

    registry_sim.state.set_faults({"outage": False})
    listing_calls.plan["fail_on"] = None
    listing_calls.clear()
    summary = reconcile.run(full=True)

    assert summary.id == failed.id and summary.resumed and summary.state == RunState.SUCCEEDED
    assert listing_calls[0] == "10" and None not in listing_calls  # not from the start again
    assert summary.registry_rows == 23 and summary.pages == 5
    assert (summary.missing_at_registry, summary.resubmitted) == (1, 1)
    assert db.session.scalar(select(func.count()).select_from(ReconciliationRun)) == 1


class Killed(BaseException):
    """Stands in for the process dying (SIGKILL): nothing gets to record the failure."""


def test_a_dead_run_is_refused_until_its_lease_expires_then_taken_over(
    recon_app, registry_sim, listing_calls, monkeypatch
):
    delivered(12)

    def die_after_first_page(phase, done, total):
        if phase == "listing" and done == 5:
            raise Killed

    with monkeypatch.context() as patch, pytest.raises(Killed):
        # A killed process records nothing.
        patch.setattr(reconcile.lease, "fail", lambda *args: None)
        reconcile.run(full=True, progress=die_after_first_page)

    dead = db.session.scalar(select(ReconciliationRun))
    assert dead.state == RunState.RUNNING and dead.registry_rows == 5

    with pytest.raises(reconcile.ReconcileBusy) as refused:
        reconcile.run(full=True)
    assert f"#{dead.id}" in str(refused.value.message)

    db.session.execute(
        update(ReconciliationRun).values(lease_expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    listing_calls.clear()
    summary = reconcile.run(full=True)

    assert summary.id == dead.id and summary.resumed and summary.state == RunState.SUCCEEDED
    assert listing_calls[0] == "5" and summary.registry_rows == 12
    db.session.expire_all()
    assert dead.resumes == 1 and "reconcile.run_taken_over" in actions()


def test_a_crash_while_comparing_resumes_without_reading_again(
    recon_app, registry_sim, listing_calls, monkeypatch
):
    delivered(6)
    lost_by_registry()
    put_directly(registry_sim, number="88880003")

    def crash(ref):
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError):
        # Stop after the missing invoices were resubmitted, before the registry side is done.
        patch.setattr(reconcile.comparison, "_find_registry_side", crash)
        reconcile.run(full=True)
    failed = db.session.scalar(select(ReconciliationRun))
    assert failed.state == RunState.FAILED and failed.listed_at is not None
    assert failed.resubmitted == 1

    listing_calls.clear()
    summary = reconcile.run(full=True)
    assert summary.resumed and listing_calls == []  # the staged listing is still there
    assert (summary.missing_at_registry, summary.resubmitted) == (1, 1)
    assert summary.unknown_to_ledger == 1 and summary.ledger_rows == 7
    assert len(findings(FindingKind.MISSING)) == 1  # nothing recorded or resubmitted twice
    assert db.session.scalar(select(func.count()).select_from(Submission)) == 7


def test_a_resumed_run_whose_staged_rows_were_lost_reads_the_listing_again(
    recon_app, registry_sim, listing_calls, monkeypatch
):
    delivered(8)
    lost_by_registry()

    def crash(ref):
        raise RuntimeError("database went away")

    with monkeypatch.context() as patch, pytest.raises(RuntimeError):
        patch.setattr(reconcile.comparison, "_find_registry_side", crash)
        reconcile.run(full=True)
    # What a PostgreSQL crash does to the (unlogged) staging table.
    db.session.execute(delete(ReconciliationStaging))
    db.session.commit()

    listing_calls.clear()
    summary = reconcile.run(full=True)

    assert summary.resumed and listing_calls == [None, "5"]  # from the start again
    assert (summary.registry_rows, summary.pages, summary.ledger_rows) == (8, 2, 9)
    assert (summary.missing_at_registry, summary.resubmitted) == (1, 1)
    assert len(findings(FindingKind.MISSING)) == 1


def test_a_concurrent_run_is_refused_with_a_clear_message(recon_app, registry_sim):
    delivered(8)
    runner = recon_app.test_cli_runner()
    seen = {}

    def second_invocation(phase, done, total):
        if phase == "listing" and done == 5 and not seen:
            with recon_app.app_context():  # its own session and connection, as on another host
                seen["result"] = runner.invoke(reconcile_cli, ["run"])

    first = reconcile.run(full=True, progress=second_invocation)

    result = seen["result"]
    assert result.exit_code == 1
    assert f"refused: reconciliation run #{first.id} (full) is in progress" in result.output
    assert first.state == RunState.SUCCEEDED and first.registry_rows == 8
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(ReconciliationRun)) == 1


def test_the_database_refuses_a_second_running_run(recon_app):
    db.session.add(ReconciliationRun(kind=RunKind.FULL, state=RunState.RUNNING))
    db.session.commit()
    db.session.add(ReconciliationRun(kind=RunKind.FULL, state=RunState.RUNNING))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()
    db.session.add(ReconciliationRun(kind=RunKind.FULL, state=RunState.SUCCEEDED))
    db.session.commit()  # only running rows are limited to one


# --------------------------------------------------------------------------------------------
# The CLI and the scheduled job.


def test_cli_run_prints_counts_and_status_lists_runs(recon_app, registry_sim):
    delivered(3)
    lost_by_registry()
    runner = recon_app.test_cli_runner()

    result = runner.invoke(reconcile_cli, ["run", "--full"])

    assert result.exit_code == 0, result.output
    assert "reading the registry listing" in result.stderr
    assert "missing at the registry: 1 (1 resubmitted)" in result.stdout
    assert "unknown to the ledger: 0" in result.stdout

    status = runner.invoke(reconcile_cli, ["status"])
    assert status.exit_code == 0
    assert "full" in status.output and "succeeded" in status.output
    assert "open findings: missing 1, mismatch 0, unknown 0" in status.output


def test_cli_run_reports_a_registry_outage_and_exits_non_zero(recon_app, registry_sim):
    delivered(2)
    registry_sim.state.set_faults({"outage": True})
    result = recon_app.test_cli_runner().invoke(reconcile_cli, ["run"])
    assert result.exit_code == 1
    assert "the next run resumes where it stopped" in result.stderr


def test_the_scheduled_job_runs_and_steps_aside_for_a_running_one(recon_app, registry_sim):
    from workers import reconcile as job

    delivered(2)
    outcome = job.run()
    assert outcome["kind"] == "full" and outcome["registry_rows"] == 2

    db.session.add(
        ReconciliationRun(
            kind=RunKind.INCREMENTAL,
            state=RunState.RUNNING,
            owner="elsewhere:1:x",
            lease_expires_at=utcnow() + timedelta(minutes=1),
        )
    )
    db.session.commit()
    refused = job.run()
    assert "in progress" in refused["refused"]
