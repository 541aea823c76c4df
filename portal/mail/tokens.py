"""Signed, expiring rating links: "rate this case" from a mail, without signing in.

After a case resolves, the customer gets five links (scores 1 to 5). Each carries the same token:
the case id and a random nonce, signed with the app's ``SECRET_KEY`` and stamped with the time
it was made. The score travels beside the token in the URL, unsigned, because the customer is
free to pick any score anyway; the token only proves "this mail was sent for this case".

Signed and expiring is this module's job. **Single use is the caller's**: store the nonce on the
case when the mail is built (``new_nonce()``), and when a rating is submitted accept it only if
the token's nonce equals the stored one, clearing it in the same statement, e.g.
``UPDATE cases SET rating_nonce = NULL … WHERE id = :id AND rating_nonce = :nonce`` and check
that one row changed. A second click, or a link from an older mail, then finds no match.

Mail scanners (Outlook Safe Links and the like) open every link in a mail before the customer
does. The page a rating link opens must therefore not record anything on GET: show the chosen
score with an optional comment box and record on POST.

Public API:

- ``make_rating_token(case_id, nonce, secret_key, now) -> str``
- ``read_rating_token(token, secret_key, max_age, now) -> (case_id, nonce)``
- ``new_nonce() -> str``: a fresh random nonce to store and sign.
- ``RATING_LINK_MAX_AGE``: a sensible validity (30 days).
- ``RatingTokenError`` (base), ``RatingTokenInvalid`` (tampered, malformed, other key),
  ``RatingTokenExpired`` (authentic but too old, or dated in the future).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

# A salt of its own: a token signed for anything else with the same SECRET_KEY (a session
# cookie, a CSRF token, an invitation) can never be read as a rating token, nor the reverse.
RATING_SALT = "portal.mail.rating-link.v1"
RATING_LINK_MAX_AGE = timedelta(days=30)


class RatingTokenError(Exception):
    """A rating link that cannot be used. ``reason`` is ``invalid`` or ``expired``."""

    reason = "invalid"


class RatingTokenInvalid(RatingTokenError):
    """Tampered, truncated, signed with another key, or not a rating token at all."""

    reason = "invalid"


class RatingTokenExpired(RatingTokenError):
    """Authentic, but older than ``max_age`` (or dated after ``now``)."""

    reason = "expired"


def _serializer(secret_key: str | bytes, now: datetime) -> URLSafeTimedSerializer:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    timestamp = int(now.timestamp())

    # itsdangerous reads the clock itself (time.time()) both when signing and when checking the
    # age. The portal passes "now" in everywhere so that tests and jobs control time; a signer
    # whose clock is that value makes the token follow the same rule.
    class _Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return timestamp

    return URLSafeTimedSerializer(secret_key, salt=RATING_SALT, signer=_Signer)


def new_nonce() -> str:
    """A fresh random nonce (128 bits, URL-safe) to store on the case and sign into the link."""
    return secrets.token_urlsafe(16)


def make_rating_token(case_id: int, nonce: str, secret_key: str | bytes, now: datetime) -> str:
    """A URL-safe token naming ``case_id`` and ``nonce``, signed and dated ``now``."""
    if isinstance(case_id, bool) or not isinstance(case_id, int) or case_id <= 0:
        raise ValueError("case_id must be a positive integer")
    if not isinstance(nonce, str) or not nonce:
        raise ValueError("nonce must be a non-empty string")
    return _serializer(secret_key, now).dumps([case_id, nonce])


def read_rating_token(
    token: str,
    secret_key: str | bytes,
    max_age: timedelta | float,
    now: datetime,
) -> tuple[int, str]:
    """The ``(case_id, nonce)`` a token carries, if it is authentic and younger than ``max_age``.

    Raises ``RatingTokenExpired`` for an authentic token past its age (the page can say "this
    link has expired") and ``RatingTokenInvalid`` for anything else. It does not know whether
    the link was used already: compare the nonce with the stored one (see the module docstring).
    """
    seconds = max_age.total_seconds() if isinstance(max_age, timedelta) else float(max_age)
    try:
        payload = _serializer(secret_key, now).loads(token, max_age=seconds)
    except SignatureExpired:
        # itsdangerous checks the signature before the age, so an expired token is authentic.
        raise RatingTokenExpired("rating link expired") from None
    except (BadData, UnicodeError, TypeError):
        raise RatingTokenInvalid("rating link invalid") from None
    # A payload of another shape can only come from our own key and salt; refuse it anyway
    # rather than hand the caller something that is not a case id.
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or isinstance(payload[0], bool)
        or not isinstance(payload[0], int)
        or not isinstance(payload[1], str)
        or not payload[1]
    ):
        raise RatingTokenInvalid("rating link invalid")
    return payload[0], payload[1]
