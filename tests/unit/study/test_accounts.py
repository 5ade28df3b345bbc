"""Built-in accounts and OpenID users (study.accounts), on SQLite and PostgreSQL: hashing,
lockout and its end (with an injected clock), session tokens, administrator-only functions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from distill_core.store.models import User
from distill_core.study import accounts
from distill_core.study.access import AccessDenied

SECRET = "unit-test-secret-key"
START = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs) -> None:
        self.now += timedelta(**kwargs)


def _make(store, name="ada", password="correct horse", **kwargs) -> int:
    with store.session() as s:
        return accounts.create_user(s, None, name, password, **kwargs).id


def test_the_password_is_never_stored_only_an_argon2_hash(store) -> None:
    uid = _make(store, "ada", "correct horse battery")
    with store.session() as s:
        row = s.execute(text("SELECT * FROM users WHERE id = :i"), {"i": uid}).mappings().one()
    stored = " ".join(str(v) for v in row.values())
    assert "correct horse battery" not in stored
    assert row["password_hash"].startswith("$argon2id$")
    other = _make(store, "bob", "correct horse battery")
    with store.session() as s:
        assert s.get(User, uid).password_hash != s.get(User, other).password_hash  # salted


def test_authenticate_by_name_or_email_and_one_sentence_for_every_wrong_pair(store) -> None:
    uid = _make(store, "ada", "correct horse", email="Ada@Lab-A.test")
    with store.session() as s:
        assert accounts.authenticate(s, "ada", "correct horse").id == uid
        assert accounts.authenticate(s, "ada@lab-a.test", "correct horse").id == uid
    sentences = set()
    for name, password in [("ada", "wrong horse"), ("nobody", "correct horse"), ("", "")]:
        with store.session() as s, pytest.raises(accounts.AuthError) as err:
            accounts.authenticate(s, name, password)
        sentences.add(str(err.value))
    assert sentences == {accounts.WRONG_NAME_OR_PASSWORD}


def test_five_failures_lock_the_account_and_the_lock_runs_out(store) -> None:
    _make(store, "ada", "correct horse")
    clock = Clock()
    for attempt in range(1, accounts.MAX_FAILED_SIGN_INS + 1):
        # each attempt in its own session whose exception rolls back: the count must survive
        with store.session() as s, pytest.raises(accounts.AuthError) as err:
            accounts.authenticate(s, "ada", f"wrong {attempt}", clock=clock)
        clock.advance(seconds=10)
    assert "locked for 15 minutes after 5 failed sign-ins" in str(err.value)
    with store.session() as s, pytest.raises(accounts.AuthError) as err:
        accounts.authenticate(s, "ada", "correct horse", clock=clock)
    assert "locked for 15 minutes after 5 failed sign-ins" in str(err.value)
    clock.advance(minutes=10)
    with store.session() as s, pytest.raises(accounts.AuthError) as err:
        accounts.authenticate(s, "ada", "correct horse", clock=clock)
    assert "locked for 5 minutes" in str(err.value)
    clock.advance(minutes=5)
    with store.session() as s:
        user = accounts.authenticate(s, "ada", "correct horse", clock=clock)
        assert user.failed_logins == 0 and user.locked_until is None


def test_a_success_resets_the_count_of_failures_in_a_row(store) -> None:
    _make(store, "ada", "correct horse")
    for _ in range(2):
        for n in range(accounts.MAX_FAILED_SIGN_INS - 1):
            with store.session() as s, pytest.raises(accounts.AuthError):
                accounts.authenticate(s, "ada", f"wrong {n}")
        with store.session() as s:
            accounts.authenticate(s, "ada", "correct horse")


def test_an_admin_reset_unlocks_and_replaces_the_password(store) -> None:
    uid = _make(store, "ada", "correct horse")
    root = _make(store, "root", "root password", admin=True)
    for n in range(accounts.MAX_FAILED_SIGN_INS):
        with store.session() as s, pytest.raises(accounts.AuthError):
            accounts.authenticate(s, "ada", f"wrong {n}")
    with store.session() as s:
        accounts.set_password(s, s.get(User, root), uid, "a new password")
    with store.session() as s, pytest.raises(accounts.AuthError):
        accounts.authenticate(s, "ada", "correct horse")
    with store.session() as s:
        assert accounts.authenticate(s, "ada", "a new password").id == uid


def test_accounts_refuse_taken_names_short_passwords_and_bad_emails(store) -> None:
    _make(store, "ada", "correct horse", email="ada@lab-a.test")
    cases = [
        ("ada", "another password", None, "already a user named 'ada'"),
        ("ada2", "short", None, "at least 8 characters"),
        ("ada3", "long enough", "ADA@lab-a.test", "already has the e-mail"),
        ("ada4", "long enough", "not-an-address", "not an e-mail address"),
        ("a b", "long enough", None, "no spaces"),
        ("local", "long enough", None, "single-user mode"),
    ]
    for name, password, email, fragment in cases:
        with store.session() as s, pytest.raises(accounts.AccountError) as err:
            accounts.create_user(s, None, name, password, email=email)
        assert fragment in str(err.value)


def test_admin_only_functions_refuse_everyone_else(store) -> None:
    plain = _make(store, "ada", "correct horse")
    root = _make(store, "root", "root password", admin=True)
    with store.session() as s:
        ada = s.get(User, plain)
        calls = [
            lambda: accounts.create_user(s, ada, "eve", "eve password"),
            lambda: accounts.set_password(s, ada, root, "taken over!"),
            lambda: accounts.admit(s, ada, plain),
            lambda: accounts.list_users(s, ada),
        ]
        for call in calls:
            with pytest.raises(AccessDenied, match="Only an administrator"):
                call()
        # an administrator who is not admitted (any more) is refused too
        admin = s.get(User, root)
        admin.active = False
        with pytest.raises(AccessDenied):
            accounts.list_users(s, admin)
        admin.active = True
        listed = accounts.list_users(s, admin)
        assert {a.username for a in listed} == {"ada", "root"}
        assert all(not hasattr(a, "password_hash") for a in listed)


def test_openid_users_wait_for_admission_unless_listed_as_admins(store) -> None:
    admins = ("alice@lab-a.test",)
    with store.session() as s:
        alice = accounts.sign_in_from_claims(
            s, {"sub": "a1", "email": "Alice@Lab-A.test", "name": "Alice A"}, admins
        )
        assert (alice.username, alice.display_name, alice.is_admin, alice.active) == (
            "alice@lab-a.test",
            "Alice A",
            True,
            True,
        )
        bob = accounts.sign_in_from_claims(
            s, {"sub": "b1", "email": "bob@lab-b.test", "name": "Bob B"}, admins
        )
        assert not bob.is_admin and not bob.active
        nomail = accounts.sign_in_from_claims(s, {"sub": "c-17"}, admins)
        assert nomail.username == "c-17" and not nomail.active
        # an unverified address neither makes an admin nor is stored
        mallory = accounts.sign_in_from_claims(
            s,
            {"sub": "m1", "email": "carol@lab-a.test", "email_verified": False},
            ("carol@lab-a.test",),
        )
        assert not mallory.is_admin and mallory.email is None
        accounts.admit(s, alice, bob.id)
        bob_id = bob.id
    with store.session() as s:
        again = accounts.sign_in_from_claims(s, {"sub": "b1", "email": "bob@lab-b.test"}, admins)
        assert again.id == bob_id and again.active
        assert s.scalar(select(User).where(User.username == "bob@lab-b.test")).id == bob_id


def test_session_tokens_expire_and_die_with_a_password_reset(store) -> None:
    uid = _make(store, "ada", "correct horse")
    clock = Clock(datetime.now(UTC))
    with store.session() as s:
        user = s.get(User, uid)
        token = accounts.session_token(user, SECRET)
        assert accounts.user_from_token(s, token, SECRET, clock=clock).id == uid
        assert accounts.user_from_token(s, token, "another secret", clock=clock) is None
        assert accounts.user_from_token(s, token[:-2] + "xx", SECRET, clock=clock) is None
        assert accounts.user_from_token(s, None, SECRET, clock=clock) is None
        clock.advance(seconds=accounts.SESSION_LIFETIME.total_seconds() + 5)
        assert accounts.user_from_token(s, token, SECRET, clock=clock) is None
        clock.now = datetime.now(UTC)
        accounts.set_password(s, None, uid, "a new password")
        assert accounts.user_from_token(s, token, SECRET, clock=clock) is None
        fresh = accounts.session_token(user, SECRET)
        assert accounts.user_from_token(s, fresh, SECRET, clock=clock).id == uid
    with pytest.raises(accounts.AccountError, match="DISTILL_SECRET_KEY"):
        accounts.session_token(user, "")
