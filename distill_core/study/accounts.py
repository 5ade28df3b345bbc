"""The people of a hosted instance: built-in accounts (argon2 password hashes, lockout after
repeated failures, a signed session token), users made from an OpenID provider's claims, and
what an administrator does (make accounts, reset passwords, admit people, list them).

An *administrator* (``User.is_admin``) manages people, not projects: roles in a project are
``study.access``. Functions that only an administrator may call take the acting ``admin``
first and refuse anyone else with ``AccessDenied``; ``None`` stands for the operator of the
installation (the command line, run on the server).

Passwords are hashed with argon2id (``argon2-cffi``, its RFC 9106 defaults); neither a password
nor anything it could be recovered from is ever stored or logged. After ``MAX_FAILED_SIGN_INS``
wrong passwords in a row an account is locked for ``LOCKOUT`` (also against the right one); a
successful sign-in or a reset by an administrator clears the count.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distill_core.clock import utcnow
from distill_core.store.models import User
from distill_core.study.access import AccessDenied
from distill_core.study.projects import LOCAL_USERNAME

#: Wrong passwords in a row after which an account is locked.
MAX_FAILED_SIGN_INS = 5
#: How long a locked account stays locked.
LOCKOUT = timedelta(minutes=15)
#: Shortest password an account may have.
MIN_PASSWORD_LENGTH = 8
#: How long a signed-in browser stays signed in (the session token's lifetime).
SESSION_LIFETIME = timedelta(hours=12)

#: The one answer to a wrong user name and to a wrong password (which of the two is not told).
WRONG_NAME_OR_PASSWORD = "The user name or the password is wrong."
#: What an OpenID user who has not been admitted yet reads.
NOT_ADMITTED = (
    "An administrator must admit you before you can use this instance; "
    "ask one to admit you, then reload this page."
)

Clock = Callable[[], datetime]

_hasher = PasswordHasher()
_dummy_hash: str | None = None


class AccountError(ValueError):
    """A user-caused problem with an account (a taken name, a short password); one sentence."""


class AuthError(AccountError):
    """A refused sign-in; ``str(e)`` is the one sentence to show."""


@dataclass(frozen=True)
class Account:
    """A user as an administrator's list shows it (never the password hash)."""

    id: int
    username: str
    display_name: str
    email: str | None
    is_admin: bool
    active: bool
    has_password: bool
    locked_until: datetime | None
    created_at: datetime


# ---------------------------------------------------------------- passwords


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted; the password cannot be read back from it)."""
    return _hasher.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _spend_a_verification(password: str) -> None:
    """Verify against a throw-away hash, so an unknown name takes as long as a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("not a password of anyone")
    _verify(_dummy_hash, password)


def _check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return password


def _aware(moment: datetime | None) -> datetime | None:
    """SQLite gives back naive datetimes; every stored time is UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


# ---------------------------------------------------------------- signing in


def authenticate(session: Session, username: str, password: str, *, clock: Clock = utcnow) -> User:
    """The user whose name (or e-mail) and password these are; else ``AuthError``.

    The same sentence answers an unknown name and a wrong password. The ``MAX_FAILED_SIGN_INS``-th
    wrong password in a row locks the account for ``LOCKOUT``; while locked, even the right
    password is refused with the minutes left. A refusal commits the failure count before it is
    raised (a caller's rollback must not undo it).
    """
    now = clock()
    user = find_user(session, username)
    if user is None or not user.password_hash:
        _spend_a_verification(password or "")
        raise AuthError(WRONG_NAME_OR_PASSWORD)
    locked_until = _aware(user.locked_until)
    if locked_until is not None and now < locked_until:
        _spend_a_verification(password or "")
        raise AuthError(_locked_sentence(locked_until - now, user.failed_logins))
    if locked_until is not None:  # the lock has run out: a fresh count
        user.locked_until, user.failed_logins = None, 0
    if not _verify(user.password_hash, password or ""):
        user.failed_logins = (user.failed_logins or 0) + 1
        sentence = WRONG_NAME_OR_PASSWORD
        if user.failed_logins >= MAX_FAILED_SIGN_INS:
            user.locked_until = now + LOCKOUT
            sentence = _locked_sentence(LOCKOUT, user.failed_logins)
        session.commit()
        raise AuthError(sentence)
    user.failed_logins, user.locked_until = 0, None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    if not user.active:
        session.commit()
        raise AuthError("An administrator must admit this account before it can sign in.")
    session.flush()
    return user


def _locked_sentence(left: timedelta, failures: int) -> str:
    minutes = max(1, math.ceil(left.total_seconds() / 60))
    return (
        f"This account is locked for {minutes} minute{'s' if minutes != 1 else ''} "
        f"after {failures} failed sign-ins in a row."
    )


def sign_in_from_claims(
    session: Session, claims: Mapping[str, Any], admins: tuple[str, ...] | list[str] = ()
) -> User:
    """The user an OpenID provider vouches for (``sub``, ``email``, ``name``), made on first sight.

    The user name is the e-mail (lower case) or else ``sub``. A user whose verified e-mail is
    among ``admins`` (``DISTILL_ADMINS``) is an administrator and admitted; anyone else new
    waits (``active=False``) until an administrator admits them.
    """
    email = str(claims.get("email") or "").strip().lower() or None
    subject = str(claims.get("sub") or "").strip()
    if not email and not subject:
        raise AuthError("The identity provider named no e-mail address and no subject.")
    verified = claims.get("email_verified", True) not in (False, "false")
    name = str(claims.get("name") or "").strip()
    username = email or subject
    if username == LOCAL_USERNAME:
        username = f"oidc:{username}"
    user = None
    if email:
        user = session.scalar(select(User).where(func.lower(User.email) == email))
    if user is None:
        user = session.scalar(select(User).where(User.username == username))
    is_admin = bool(email and verified and email in {a.strip().lower() for a in admins})
    if user is None:
        user = User(
            username=username,
            display_name=name or username,
            email=email if verified else None,
            is_admin=is_admin,
            active=is_admin,
        )
        session.add(user)
    else:
        if name and user.display_name in ("", user.username):
            user.display_name = name
        if is_admin and not (user.is_admin and user.active):
            user.is_admin, user.active = True, True
    session.flush()
    return user


def find_user(session: Session, name: str) -> User | None:
    """The user with this user name, or else with this e-mail (ignoring case)."""
    name = (name or "").strip()
    if not name:
        return None
    user = session.scalar(select(User).where(User.username == name))
    if user is None and "@" in name:
        user = session.scalar(select(User).where(func.lower(User.email) == name.lower()))
    return user


# ---------------------------------------------------------------- the session token


def _fingerprint(user: User) -> str:
    """Changes when the password does: a reset signs every browser out."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def _serializer(secret_key: str):
    from itsdangerous import URLSafeTimedSerializer

    if not secret_key:
        raise AccountError("DISTILL_SECRET_KEY is not set, so no one can stay signed in.")
    return URLSafeTimedSerializer(secret_key, salt="distill.session")


def session_token(user: User, secret_key: str) -> str:
    """A signed, URL- and cookie-safe token naming the user (valid for ``SESSION_LIFETIME``)."""
    return _serializer(secret_key).dumps({"uid": user.id, "pw": _fingerprint(user)})


def user_from_token(
    session: Session,
    token: str | None,
    secret_key: str,
    *,
    max_age: timedelta = SESSION_LIFETIME,
    clock: Clock = utcnow,
) -> User | None:
    """The admitted, unlocked user a token from ``session_token`` names; None when it is
    missing, forged, older than ``max_age``, from before a password reset, or its user may no
    longer sign in."""
    from itsdangerous import BadSignature, SignatureExpired

    if not token:
        return None
    try:
        data, signed_at = _serializer(secret_key).loads(token, max_age=None, return_timestamp=True)
    except (BadSignature, SignatureExpired, ValueError, TypeError):
        return None
    now = clock()
    signed_at = _aware(signed_at)
    if not (now - max_age <= signed_at <= now + timedelta(minutes=1)):
        return None
    user = session.get(User, data.get("uid")) if isinstance(data, dict) else None
    if user is None or not user.active or not user.password_hash:
        return None
    if data.get("pw") != _fingerprint(user):
        return None
    locked_until = _aware(user.locked_until)
    if locked_until is not None and now < locked_until:
        return None
    return user


# ---------------------------------------------------------------- administration


def _require_admin(admin: User | None, doing: str) -> None:
    """``None`` is the installation's operator (the command line on the server)."""
    if admin is None:
        return
    if not (admin.is_admin and admin.active):
        raise AccessDenied(f"Only an administrator may {doing}.")


def create_user(
    session: Session,
    acting: User | None,
    username: str,
    password: str | None,
    *,
    email: str | None = None,
    admin: bool = False,
    display_name: str = "",
) -> User:
    """A new, admitted account, made by the administrator ``acting`` (None: the operator on
    the command line); ``admin`` makes it an administrator's. ``password`` None: an account
    that cannot sign in with a password."""
    _require_admin(acting, "make accounts")
    username = (username or "").strip()
    if not username:
        raise AccountError("An account needs a user name.")
    if len(username) > 100 or any(c.isspace() for c in username):
        raise AccountError("A user name has at most 100 characters and no spaces.")
    if username == LOCAL_USERNAME:
        raise AccountError(f"The user name '{LOCAL_USERNAME}' is kept for single-user mode.")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"There is already a user named '{username}'.")
    email = (email or "").strip().lower() or None
    if email is not None:
        if "@" not in email:
            raise AccountError(f"'{email}' is not an e-mail address.")
        if session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
            raise AccountError(f"Another user already has the e-mail address {email}.")
    user = User(
        username=username,
        display_name=(display_name or "").strip() or username,
        email=email,
        is_admin=admin,
        active=True,
        password_hash=hash_password(_check_password(password)) if password is not None else None,
        failed_logins=0,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, admin: User | None, user_id: int, password: str) -> User:
    """Give the account a new password (a reset by an administrator); clears any lock and signs
    every browser of that account out."""
    _require_admin(admin, "reset passwords")
    user = _get(session, user_id)
    user.password_hash = hash_password(_check_password(password))
    user.failed_logins, user.locked_until = 0, None
    session.flush()
    return user


def admit(session: Session, admin: User | None, user_id: int) -> User:
    """Let a user who signed in through the identity provider use the instance."""
    _require_admin(admin, "admit people")
    user = _get(session, user_id)
    user.active = True
    session.flush()
    return user


def list_users(session: Session, admin: User | None) -> list[Account]:
    """Every user, those waiting to be admitted first, then by name."""
    _require_admin(admin, "list the users")
    users = session.scalars(select(User).order_by(User.active, User.username))
    return [
        Account(
            id=u.id,
            username=u.username,
            display_name=u.display_name,
            email=u.email,
            is_admin=bool(u.is_admin),
            active=bool(u.active),
            has_password=bool(u.password_hash),
            locked_until=_aware(u.locked_until),
            created_at=_aware(u.created_at),
        )
        for u in users
        if u.username != LOCAL_USERNAME
    ]


def _get(session: Session, user_id: int) -> User:
    user = session.get(User, user_id) if user_id is not None else None
    if user is None:
        raise AccountError(f"There is no user with id {user_id}.")
    return user
