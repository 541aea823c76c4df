"""The error type every service raises for a person to read."""

from __future__ import annotations


class ServiceError(Exception):
    """A use case refused: ``message`` is fit to show the person who asked (it may be lazy).

    ``field`` names the form field at fault, when there is one, so a view can put the message
    beside it instead of at the top of the page.
    """

    def __init__(self, message, field: str | None = None, code: str | None = None):
        super().__init__(str(message))
        self.message = message
        self.field = field
        self.code = code or "refused"
