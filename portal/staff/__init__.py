"""Pages for staff (reviewers, supervisors, admins). Customers never reach them."""

from flask import Blueprint

bp = Blueprint("staff", __name__)

from . import routes  # noqa: E402,F401


@bp.app_context_processor
def staff_banner() -> dict:
    """Open alerts on every page a staff member sees (cleared alerts disappear by themselves)."""
    from flask_login import current_user

    if not (current_user and current_user.is_authenticated and current_user.is_staff):
        return {"staff_alerts": []}
    from ..services.monitoring import open_alerts

    return {"staff_alerts": open_alerts()}
