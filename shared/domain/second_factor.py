"""The TOTP second factor of password accounts (issue 21): enrolment, checking a code or a
recovery code, and an administrator's reset.

The secret is sealed under the identity chain (``shared/protected.py``: the worker never
holds it); recovery codes are stored as argon2 hashes and each works once. Codes are counted
with the password's failure counters (``users.open_throttles``): per account, and per client
address together with the password attempts."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from shared.crypto import Secret
from shared.db import new_uuid, utcnow
from shared.domain import audit, users
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError
from shared.models import RecordKey, RecoveryCode, SecondFactor, User
from shared.passwords import hash_password, verify_password

ISSUER = "ICL-I 93"  # the name authenticator applications show next to the account
RECOVERY_CODE_COUNT = 10
# A code typed up to one 30-second step early or late is accepted (clocks drift).
ACCEPTED_DRIFT_STEPS = 1
MAX_FAILURES_PER_ACCOUNT = 5
_TOTP_CODE = re.compile(r"\d{6}")
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread
WRONG_CODE = "Code incorrect ou expiré. Saisissez le code affiché par votre application."


@dataclass(frozen=True)
class Enrolment:
    """What the enrolment page shows: the secret for typing it in, and the otpauth URI the
    QR code holds. Both are wrapped: nothing logs or caches them by accident."""

    secret: Secret
    uri: Secret


def required_for(user: User, everyone: bool) -> bool:
    """Administrators and the DPO always need a second factor; the others when the instance
    says so (``ICLI_SECOND_FACTOR_EVERYONE``)."""
    return everyone or user.has_role("admin") or user.has_role("dpo")


def _factor(session: Session, user: User) -> SecondFactor | None:
    return session.scalar(select(SecondFactor).where(SecondFactor.user_id == user.id))


def is_enrolled(session: Session, user: User) -> bool:
    factor = _factor(session, user)
    return factor is not None and factor.confirmed_at is not None


@dataclass(frozen=True)
class Status:
    """What the account page says of the second factor."""

    enrolled: bool
    recovery_codes_left: int


def status(session: Session, user: User) -> Status:
    return Status(is_enrolled(session, user), len(session.scalars(select(RecoveryCode.id).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))).all()))


def start_enrolment(session: Session, vault: Vault, user: User) -> Enrolment:
    """The secret the user adds to their application: a new one, or the one shown before
    and not confirmed yet (reloading the page keeps the QR code already scanned)."""
    factor = _factor(session, user)
    if factor is not None and factor.confirmed_at is not None:
        raise InvalidTransitionError("Un second facteur est déjà activé pour ce compte. Pour "
                                     "en changer, demandez sa réinitialisation à un·e "
                                     "administrateur·rice.")
    if factor is None:
        factor = SecondFactor(uuid=new_uuid(), user_id=user.id, last_step=0)
        vault.seal(factor, "secret", pyotp.random_base32())
        session.add(factor)
        session.flush()
    secret = vault.open(factor, "secret")
    uri = pyotp.TOTP(secret.reveal()).provisioning_uri(name=user.email, issuer_name=ISSUER)
    return Enrolment(secret=secret, uri=Secret(uri))


def confirm_enrolment(session: Session, vault: Vault, user: User, code: str, address: str,
                      now: datetime | None = None) -> list[str]:
    """The first code from the application turns the factor on; returns the recovery codes,
    shown once. Audited."""
    now = now or utcnow()
    factor = _factor(session, user)
    if factor is None or factor.confirmed_at is not None:
        raise InvalidTransitionError("Aucune activation de second facteur n'est en cours.")
    rows = _throttles(session, user, address, now)
    step = _matching_step(vault, factor, code, now)
    if step is None:
        users.count_failure(session, rows, now)
        raise InvalidInputError(WRONG_CODE)
    factor.confirmed_at, factor.last_step = now, step
    codes = _new_recovery_codes(session, user)
    audit.record(session, vault.keyring, audit.Actor(user.id), "second_factor_enrolled",
                 object_type="users", object_ids=[user.id])
    return codes


def check(session: Session, vault: Vault, user: User, code: str, address: str,
          now: datetime | None = None) -> str:
    """Accept a TOTP code (each at most once) or an unused recovery code (then spent);
    returns which one, "totp" or "recovery_code". A wrong code counts as a failed login."""
    now = now or utcnow()
    factor = _factor(session, user)
    if factor is None or factor.confirmed_at is None:
        raise InvalidTransitionError("Ce compte n'a pas de second facteur activé.")
    rows = _throttles(session, user, address, now)
    code = "".join(code.split()).lower()
    how = None
    if _TOTP_CODE.fullmatch(code):
        step = _matching_step(vault, factor, code, now)
        if step is not None:
            factor.last_step, how = step, "totp"
    elif (recovery := _matching_recovery_code(session, user, code)) is not None:
        recovery.used_at, how = now, "recovery_code"
        audit.record(session, vault.keyring, audit.Actor(user.id), "recovery_code_used",
                     object_type="users", object_ids=[user.id])
    if how is None:
        users.count_failure(session, rows, now)
        raise InvalidInputError(WRONG_CODE)
    account_row = rows[0][0]  # as for passwords, the address counter is kept
    account_row.failures, account_row.locked_until = 0, None
    session.flush()
    return how


def reset(session: Session, vault: Vault, user: User) -> None:
    """An administrator takes the second factor off an account (a lost phone and no recovery
    code left): its secret is shredded with its data key, its recovery codes deleted, its
    sessions ended. Audited; the account enrols again at its next sign-in if it must."""
    if vault.actor.user_id == user.id:
        raise InvalidInputError("Vous ne pouvez pas réinitialiser votre propre second facteur :"
                                " demandez-le à un·e autre administrateur·rice.")
    factor = _factor(session, user)
    if factor is None:
        raise InvalidTransitionError("Ce compte n'a pas de second facteur.")
    session.execute(delete(RecordKey).where(RecordKey.record_uuid == factor.uuid))
    session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    session.delete(factor)
    users.end_sessions(session, user)
    audit.record(session, vault.keyring, vault.actor, "second_factor_reset",
                 object_type="users", object_ids=[user.id])


def _throttles(session: Session, user: User, address: str, now: datetime):
    return users.open_throttles(session, {
        users.throttle_key("second_factor", str(user.id)): MAX_FAILURES_PER_ACCOUNT,
        users.throttle_key("address", address or "unknown"): users.MAX_FAILURES_PER_ADDRESS,
    }, now)


def _matching_step(vault: Vault, factor: SecondFactor, code: str,
                   now: datetime) -> int | None:
    """The time step ``code`` is valid for, if later than the last one accepted."""
    code = "".join(code.split())
    if not _TOTP_CODE.fullmatch(code):
        return None
    totp = pyotp.TOTP(vault.open(factor, "secret").reveal())
    # Stored times are naive UTC, and pyotp would read a naive time as local time.
    current = totp.timecode(now if now.tzinfo else now.replace(tzinfo=UTC))
    for step in range(current - ACCEPTED_DRIFT_STEPS, current + ACCEPTED_DRIFT_STEPS + 1):
        if step > factor.last_step and hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def _matching_recovery_code(session: Session, user: User, code: str) -> RecoveryCode | None:
    code = code.replace("-", "")
    for row in session.scalars(select(RecoveryCode).where(
            RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))):
        if verify_password(row.code_hash, code):
            return row
    return None


def _new_recovery_codes(session: Session, user: User) -> list[str]:
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
             for _ in range(RECOVERY_CODE_COUNT)]
    session.add_all(RecoveryCode(user_id=user.id, code_hash=hash_password(code))
                    for code in codes)
    session.flush()
    return [f"{code[:5]}-{code[5:]}" for code in codes]
