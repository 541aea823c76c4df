"""The audit viewer (issue 20): keyset paging over every row exactly once, filters, event
names and diffs in words (Chinese as text, not \\u escapes), CSV of the filtered set."""

from __future__ import annotations

import re

from portal.extensions import db
from portal.services import audit
from tests.conftest import AuthActions


def _events(n: int) -> None:
    for i in range(n):
        audit.record(
            "case.priority" if i % 3 else "invoice.corrected",
            "case" if i % 3 else "invoice",
            f"OBJ-{i}",
            before={"buyer_name": "北京旧名称有限公司"},
            after={"buyer_name": f"北京新名称有限公司{i}"},
            actor="system",
        )
    db.session.commit()


def test_paging_covers_every_row_exactly_once(ctx):
    _events(123)
    all_ids = set(db.session.scalars(db.select(audit.AuditEvent.id)))
    seen, before = [], None
    while True:
        found = audit.page(audit.AuditFilter(), before=before, size=50)
        seen += [e.id for e in found.events]
        assert found.total == 123
        if found.next_before is None:
            break
        before = found.next_before
    assert len(seen) == len(set(seen)) == 123 and set(seen) == all_ids
    assert seen == sorted(seen, reverse=True)


def test_the_viewer_pages_filters_and_speaks_chinese(app, make_user):
    make_user("s@example.com", "supervisor")
    with app.app_context():
        _events(260)  # past the old silent 200-row stop
    staff = AuthActions(app.test_client())
    staff.login("s@example.com")
    seen, url = [], "/staff/audit?action=case.priority"
    while url:
        page = staff.client.get(url).get_data(as_text=True)
        seen += re.findall(r'<tr class="audit-row" data-id="(\d+)"', page)
        nxt = re.search(r'rel="next" href="([^"]+)"', page)
        url = nxt[1].replace("&amp;", "&") if nxt else None
    with app.app_context():
        expected = audit.page(audit.AuditFilter(action="case.priority"), size=10_000).total
    assert len(seen) == len(set(seen)) == expected == 173
    assert (
        "优先级已更改" in page
        and "case.priority" not in page.split("<tbody>")[1].split("</tbody>")[0]
    )
    assert "北京旧名称有限公司" in page and "\\u5317" not in page
    assert "购买方名称" in page  # the changed field by its name
    assert "已列出全部符合条件的记录" in page

    csv = staff.client.get("/staff/audit.csv?action=case.priority").get_data(as_text=True)
    assert len(csv.strip().splitlines()) == 1 + 173
    assert "北京新名称有限公司" in csv
