"""Accounts: creation, editing, habilitation, deactivation, password reset, authentication
with throttling.

The operations an administrator, a user or the CLI performs (``create_account``,
``update_account``, ``set_active``, ``reset_password``, ``change_password``) write their own
audit rows, so the admin pages and ``icli users`` write the same ones. The worker calls
``deactivate_expired`` at each maintenance step: an account past its habilitation's end is
deactivated there (and refused at login and on every request from that day on, whether or
not the worker has run)."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from shared.crypto import KeyRing
from shared.db import utc_to_paris, utcnow
from shared.domain import audit
from shared.encrypted import Vault
from shared.errors import InvalidInputError, InvalidTransitionError, NotFoundError
from shared.models import Circonscription, LoginThrottle, RoleAssignment, Structure, User
from shared.models.document import INSTITUTIONS
from shared.models.user import ROLES
from shared.passwords import hash_password, needs_rehash, password_problem, verify_password
from shared.text import clean_text, has_control

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Throttling: failures allowed in a window, then the key is locked for LOCK_TIME.
WINDOW = timedelta(minutes=15)
LOCK_TIME = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT = 5
MAX_FAILURES_PER_ADDRESS = 20


@dataclass(frozen=True)
class RoleSpec:
    role: str
    structure_id: int | None = None
    circonscription_ids: tuple[int, ...] = ()
    manager: bool = False  # a referent who sees all the structure's sheets
    institution: str | None = None  # a director signs for "departement" or "france_travail"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def generate_password() -> str:
    """A random password that meets the policy, shown once to whoever resets it."""
    return secrets.token_urlsafe(12)


def paris_today(now: datetime | None = None) -> date:
    """The day it is in Paris: habilitations start and end on Paris days."""
    return utc_to_paris(now or utcnow()).date()


def valid_email(email: str) -> str:
    """``email`` normalised, or InvalidInputError in French."""
    email = normalise_email(email)
    if not EMAIL_RE.match(email) or len(email) > 254 or has_control(email):
        raise InvalidInputError("L'adresse e-mail n'est pas valide.")
    return email


def check_habilitation(starts_on: date | None, ends_on: date | None) -> None:
    if starts_on and ends_on and ends_on < starts_on:
        raise InvalidInputError("La fin d'habilitation précède son début.")


def create_user(session: Session, *, email: str, full_name: str, password: str,
                role: RoleSpec, must_change_password: bool = False,
                habilitation: tuple[date | None, date | None] = (None, None)) -> User:
    email = valid_email(email)
    full_name = clean_text(full_name, label="Nom", limit=160, required=True)
    problem = password_problem(password)
    if problem:
        raise InvalidInputError(problem)
    check_habilitation(*habilitation)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise InvalidInputError("Un compte existe déjà avec cette adresse e-mail.")
    user = User(email=email, full_name=full_name, password_hash=hash_password(password),
                must_change_password=must_change_password,
                habilitation_starts_on=habilitation[0], habilitation_ends_on=habilitation[1])
    user.roles = role_assignments(session, role)
    session.add(user)
    session.flush()
    return user


def role_spec(user: User) -> RoleSpec:
    """The account's role as the form and the import describe it (one role per account)."""
    if not user.roles:
        return RoleSpec("")
    first = user.roles[0]
    return RoleSpec(first.role, structure_id=first.structure_id,
                    circonscription_ids=tuple(sorted(user.circonscription_ids)),
                    manager=bool(first.is_manager), institution=first.institution)


def update_account(session: Session, vault: Vault, user: User, *, full_name: str,
                   role: RoleSpec, habilitation: tuple[date | None, date | None]) -> list[str]:
    """An administrator edits an account's name, role and scope (structure, circonscriptions,
    manager flag, institution) and habilitation dates. A change of role or scope ends the
    account's sessions (its pages were built for the old rights); the dates need not, as
    every request checks them. Audited as
    ``user_updated`` with the names of the fields changed (never their values); returns
    them (empty: nothing changed, nothing written)."""
    full_name = clean_text(full_name, label="Nom", limit=160, required=True)
    check_habilitation(*habilitation)
    if (vault.actor.user_id == user.id and user.has_role("admin") and role.role != "admin"):
        raise InvalidInputError("Vous ne pouvez pas retirer votre propre rôle "
                                "d'administrateur·rice.")
    starts, ends = habilitation
    today = paris_today()
    if vault.actor.user_id == user.id and not ((starts is None or starts <= today)
                                               and (ends is None or today <= ends)):
        raise InvalidInputError("Vos propres dates d'habilitation doivent inclure aujourd'hui : "
                                "sinon vous ne pourriez plus vous connecter.")
    changed = []
    if full_name != user.full_name:
        user.full_name = full_name
        changed.append("full_name")
    if (user.habilitation_starts_on, user.habilitation_ends_on) != habilitation:
        user.habilitation_starts_on, user.habilitation_ends_on = habilitation
        changed.append("habilitation")
    wanted = role_assignments(session, role)
    if _scope(wanted) != _scope(user.roles):
        user.roles = wanted
        changed.append("role")
    if not changed:
        return changed
    if "role" in changed:
        end_sessions(session, user)
    session.flush()
    _audit(vault, "user_updated", user, fields=changed)
    return changed


def _scope(assignments: list[RoleAssignment]) -> set[tuple]:
    return {(a.role, a.structure_id, a.circonscription_id, bool(a.is_manager), a.institution)
            for a in assignments}


def deactivate_expired(session: Session, keyring: KeyRing, actor: audit.Actor,
                       today: date | None = None) -> list[int]:
    """Deactivate every active account whose habilitation ended before ``today`` (Paris);
    each is audited (``user_expired``) and its sessions end. Returns their ids."""
    today = today or paris_today()
    expired = list(session.scalars(select(User).where(
        User.active.is_(True), User.habilitation_ends_on.is_not(None),
        User.habilitation_ends_on < today).order_by(User.id)))
    for user in expired:
        user.active = False
        end_sessions(session, user)
        audit.record(session, keyring, actor, "user_expired", object_type="users",
                     object_ids=[user.id])
    return [user.id for user in expired]


def create_account(session: Session, vault: Vault, *, email: str, full_name: str,
                   role: RoleSpec, habilitation: tuple[date | None, date | None] = (None, None)
                   ) -> tuple[User, str]:
    """An administrator (or the CLI) opens an account with a one-time password, to change at
    first login; returns the account and that password (shown once). Audited with its role."""
    password = generate_password()
    user = create_user(session, email=email, full_name=full_name, password=password, role=role,
                       must_change_password=True, habilitation=habilitation)
    _audit(vault, "user_created", user, fields=[role.role])
    return user, password


def create_first_administrator(session: Session, vault: Vault, *, email: str,
                               full_name: str) -> tuple[User, str]:
    """The instance's first account, an administrator with a one-time password (shown
    once): refused once any account exists (the others are created by an administrator)."""
    if session.scalar(select(func.count()).select_from(User)):
        raise InvalidTransitionError("Refusé : l'instance a déjà des comptes ; un "
                                     "administrateur crée les suivants (page Comptes).")
    return create_account(session, vault, email=email, full_name=full_name,
                          role=RoleSpec("admin"))


def _audit(vault: Vault, action: str, user: User, **kwargs) -> None:
    audit.record(vault.session, vault.keyring, vault.actor, action, object_type="users",
                 object_ids=[user.id], **kwargs)


def role_assignments(session: Session, spec: RoleSpec) -> list[RoleAssignment]:
    """The assignments ``spec`` describes, new and unattached; InvalidInputError in French
    when its scope is missing or unknown (the forms and the CSV import share this rule)."""
    if spec.role not in ROLES:
        raise InvalidInputError("Rôle inconnu.")
    if spec.role == "referent":
        if spec.structure_id is None or session.get(Structure, spec.structure_id) is None:
            raise InvalidInputError("Un·e référent·e doit être rattaché·e à une structure.")
        return [RoleAssignment(role="referent", structure_id=spec.structure_id,
                               is_manager=spec.manager)]
    if spec.role == "facilitator":
        ids = sorted(set(spec.circonscription_ids))
        found = session.scalar(select(func.count()).select_from(Circonscription)
                               .where(Circonscription.id.in_(ids))) if ids else 0
        if not ids or found != len(ids):
            raise InvalidInputError("Choisissez au moins une circonscription existante.")
        return [RoleAssignment(role="facilitator", circonscription_id=i) for i in ids]
    if spec.role == "director":
        if spec.institution not in INSTITUTIONS:
            raise InvalidInputError("Précisez l'institution pour laquelle la direction signe.")
        return [RoleAssignment(role="director", institution=spec.institution)]
    return [RoleAssignment(role=spec.role)]


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFoundError("Compte introuvable.")
    return user


def end_sessions(session: Session, user: User) -> None:
    """Every session cookie issued to ``user`` so far stops opening pages, copies included:
    logout, a password change or reset, a deactivation or a change of role calls this."""
    user.session_version += 1
    session.flush()


def user_by_email(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFoundError("Aucun compte avec cette adresse e-mail.")
    return user


def set_active(session: Session, vault: Vault, user: User, active: bool) -> None:
    """Deactivate an account (it can no longer log in, its sessions end) or reactivate it:
    each an explicit, audited act. Nobody deactivates their own account (an administrator
    would lock themself out)."""
    if not active and vault.actor.user_id == user.id:
        raise InvalidInputError("Vous ne pouvez pas désactiver votre propre compte.")
    ends_on = user.habilitation_ends_on
    if active and ends_on is not None and ends_on < paris_today():
        # The worker would deactivate it again at its next step.
        raise InvalidInputError("L'habilitation de ce compte est terminée : modifiez d'abord "
                                "sa date de fin.")
    user.active = active
    end_sessions(session, user)  # a reactivation must not revive an old cookie
    _audit(vault, "user_activated" if active else "user_deactivated", user)


def reset_password(session: Session, vault: Vault, user: User) -> str:
    """Give the user a new random password, to change at next login; returns it once.

    A deactivated account stays deactivated: reactivating is its own act (``set_active``),
    so a reset asked for a forgotten password never reopens the account of someone who
    left or was suspended."""
    password = generate_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    end_sessions(session, user)
    _audit(vault, "password_reset", user)
    return password


def change_password(session: Session, vault: Vault, user: User, current: str,
                    new: str) -> None:
    """The user changes their own password (the current one first); audited."""
    if not verify_password(user.password_hash, current):
        raise InvalidInputError("Le mot de passe actuel est incorrect.")
    problem = password_problem(new)
    if problem:
        raise InvalidInputError(problem)
    if new == current:
        raise InvalidInputError("Le nouveau mot de passe doit être différent de l'actuel.")
    user.password_hash = hash_password(new)
    user.must_change_password = False
    end_sessions(session, user)
    _audit(vault, "password_changed", user)


class LoginThrottledError(InvalidInputError):
    pass


def throttle_key(kind: str, value: str) -> str:
    # The counter names a hash, not the e-mail or address itself.
    return f"{kind}:{hashlib.sha256(value.encode()).hexdigest()[:40]}"


def _throttle(session: Session, key: str, now: datetime) -> LoginThrottle:
    row = session.get(LoginThrottle, key)
    if row is None:
        row = LoginThrottle(key=key, failures=0, window_started_at=now)
        session.add(row)
    elif row.window_started_at < now - WINDOW:
        row.failures, row.window_started_at = 0, now
    return row


def open_throttles(session: Session, limits: dict[str, int],
                   now: datetime) -> list[tuple[LoginThrottle, int]]:
    """The failure counters of these keys (key: its limit), or LoginThrottledError while
    any of them is locked. The password and the second-factor steps both count here."""
    rows = [(_throttle(session, key, now), limit) for key, limit in limits.items()]
    for row, _ in rows:
        if row.locked_until and row.locked_until > now:
            minutes = max(1, int((row.locked_until - now).total_seconds() // 60) + 1)
            raise LoginThrottledError(
                f"Trop de tentatives de connexion. Réessayez dans {minutes} minute(s)."
            )
    return rows


def count_failure(session: Session, rows: list[tuple[LoginThrottle, int]],
                  now: datetime) -> None:
    """One more failure on each counter; a counter at its limit locks for LOCK_TIME."""
    for row, limit in rows:
        row.failures += 1
        if row.failures >= limit:
            row.locked_until = now + LOCK_TIME
    session.flush()


def authenticate(session: Session, email: str, password: str, address: str,
                 now: datetime | None = None) -> User:
    """The active user with these credentials, else InvalidInputError with a French message.

    Failures are counted per account and per client address; past the limit the key is
    locked for a while, with the same message whether or not the account exists.
    """
    now = now or utcnow()
    if has_control(email):  # a NUL byte would reach the database query
        email = ""
    rows = open_throttles(session, {
        throttle_key("account", normalise_email(email)): MAX_FAILURES_PER_ACCOUNT,
        throttle_key("address", address or "unknown"): MAX_FAILURES_PER_ADDRESS}, now)
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    valid = user is not None and verify_password(user.password_hash, password)
    if not valid:
        if user is None:
            verify_password(_dummy_hash(), password)  # same time whether the account exists
        count_failure(session, rows, now)
        raise InvalidInputError("Adresse e-mail ou mot de passe incorrect.")
    if not user.active:
        raise InvalidInputError("Ce compte est désactivé. Contactez votre administrateur·rice.")
    if not user.habilitated_on(paris_today(now)):
        raise InvalidInputError("Ce compte n'est pas habilité à cette date. Contactez votre "
                                "administrateur·rice.")
    account_row = rows[0][0]  # the address counter is kept: one good login must not reset it
    account_row.failures, account_row.locked_until = 0, None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = now
    session.flush()
    return user


@functools.cache
def _dummy_hash() -> str:
    # Made on first use, not at import: an argon2 hash costs 15-24 % of every process start.
    return hash_password("not-a-real-password-0000")
