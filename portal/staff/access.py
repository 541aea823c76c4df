"""Role checks for staff pages."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user

from ..models import Role


def staff_required(role: Role = Role.REVIEWER):
    """Signed-in staff with ``role`` or above; anonymous visitors go to sign-in, others get 403."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                from ..extensions import login_manager

                return login_manager.unauthorized()
            if not current_user.has_role(role):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
