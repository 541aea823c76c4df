"""The scheduled reconciliation of the ledger with the registry's listing."""

from portal.services import reconcile

from .context import job_context


def run(full: bool = False) -> dict:
    """Run (or resume) one reconciliation; a run already in progress elsewhere is left alone.

    Being refused is the normal outcome when the previous run is still going, so it is a
    result, not a job failure. A registry outage fails the job (RQ sees it); the interrupted
    run is resumed by the next scheduled one.
    """
    with job_context():
        try:
            summary = reconcile.run(full=full)
        except reconcile.ReconcileBusy as busy:
            return {"refused": str(busy.message), "running": busy.run_id}
    return {
        "run": summary.id,
        "kind": summary.kind,
        "resumed": summary.resumed,
        "registry_rows": summary.registry_rows,
        "ledger_rows": summary.ledger_rows,
        "missing_at_registry": summary.missing_at_registry,
        "resubmitted": summary.resubmitted,
        "mismatched": summary.mismatched,
        "unknown_to_ledger": summary.unknown_to_ledger,
        "seconds": summary.duration_seconds,
    }
