"""Signing in (issue 21): a password then, where one is needed, the second factor; or the word
of an OpenID Connect provider about a verified e-mail.

Every way in ends with the same ``login`` audit row, whose purpose says how (never a value
typed); every refusal is a ``login_failed`` row naming only the kind of refusal. The caller
commits in both cases: failure counters and audit rows are kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from shared.config import OidcProvider
from shared.db import utcnow
from shared.domain import audit, second_factor, users
from shared.encrypted import Vault
from shared.errors import DomainError, InvalidInputError
from shared.models import OidcLink, User

# Between the password and the code: past this, the password is asked again.
PENDING_LIFETIME = timedelta(minutes=5)
PENDING_EXPIRED = "Votre connexion a expiré : saisissez de nouveau votre mot de passe."

# What comes after a right password.
SIGNED_IN = "signed_in"
CODE_NEEDED = "code_needed"  # the account has a second factor
ENROLMENT_NEEDED = "enrolment_needed"  # it must have one and has none yet


@dataclass(frozen=True)
class PasswordOutcome:
    user: User
    next_step: str


@dataclass(frozen=True)
class Pending:
    """An account between its password and its second factor (kept in the session cookie,
    signed): the code step only goes on for this account, soon, and while nothing ended
    its sessions."""

    user_id: int
    session_version: int
    password_checked_at: datetime


@dataclass(frozen=True)
class ProviderClaims:
    """What the provider said, once its ID token was checked (signature, issuer, audience,
    expiry, nonce) and its userinfo read: plain values."""

    subject: str
    email: str
    email_verified: bool
    acr: str = ""
    siret: str = ""  # ProConnect: the agent's establishment, when the provider knows it


class SignInExpiredError(InvalidInputError):
    """The password step is too old, or the account changed since: start again."""


class SignInRefused(InvalidInputError):
    """A French message for the user and a short code for the audit row."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def with_password(session: Session, vault: Vault, email: str, password: str, address: str,
                  *, second_factor_everyone: bool, now: datetime | None = None
                  ) -> PasswordOutcome:
    """The password step: SIGNED_IN (audited ``login``), or the second-factor step to go
    through before anything else (CODE_NEEDED, ENROLMENT_NEEDED)."""
    try:
        user = users.authenticate(session, email, password, address, now)
    except InvalidInputError as exc:
        _refused(session, vault, type(exc).__name__)
        raise
    if second_factor.is_enrolled(session, user):
        return PasswordOutcome(user, CODE_NEEDED)
    if second_factor.required_for(user, second_factor_everyone):
        return PasswordOutcome(user, ENROLMENT_NEEDED)
    _signed_in(session, vault, user, "mot de passe")
    return PasswordOutcome(user, SIGNED_IN)


def _pending_user(session: Session, pending: Pending, now: datetime) -> User:
    """The account whose password was just checked, if that was recent and nothing ended
    its sessions since (a reset, a deactivation); InvalidInputError otherwise."""
    user = session.get(User, pending.user_id)
    if (user is None or not user.active or user.session_version != pending.session_version
            or not now - PENDING_LIFETIME <= pending.password_checked_at <= now):
        raise SignInExpiredError(PENDING_EXPIRED)
    return user


def with_second_factor(session: Session, vault: Vault, pending: Pending, code: str,
                       address: str, now: datetime | None = None) -> User:
    """The code step after the password: a TOTP or a recovery code. Audited either way."""
    now = now or utcnow()
    try:
        user = _pending_user(session, pending, now)
        how = second_factor.check(session, vault, user, code, address, now)
    except DomainError as exc:
        _refused(session, vault, f"second_factor:{type(exc).__name__}")
        raise
    _signed_in(session, vault, user, "mot de passe + " + (
        "code de secours" if how == "recovery_code" else "code TOTP"))
    return user


def start_enrolment(session: Session, vault: Vault, pending: Pending,
                    now: datetime | None = None) -> second_factor.Enrolment:
    """What the enrolment page shows an account that must have a second factor, between
    its password and its first code."""
    user = _pending_user(session, pending, now or utcnow())
    return second_factor.start_enrolment(session, vault, user)


def with_enrolment(session: Session, vault: Vault, pending: Pending, code: str,
                   address: str, now: datetime | None = None) -> tuple[User, list[str]]:
    """The first sign-in of an account that must have a second factor: its first code turns
    the factor on and signs in. Returns the account and its recovery codes (shown once)."""
    now = now or utcnow()
    try:
        user = _pending_user(session, pending, now)
        codes = second_factor.confirm_enrolment(session, vault, user, code, address, now)
    except DomainError as exc:
        _refused(session, vault, f"second_factor:{type(exc).__name__}")
        raise
    _signed_in(session, vault, user, "mot de passe + code TOTP (activation)")
    return user, codes


def with_provider(session: Session, vault: Vault, provider: OidcProvider,
                  claims: ProviderClaims, *, second_factor_everyone: bool,
                  now: datetime | None = None) -> User:
    """The account the provider vouches for: an existing, active account with that verified
    e-mail, which this provider may vouch for. Never creates an account. The provider's acr
    stands for the second factor: an account that needs one gets in only with an acr the
    provider's settings list as two-factor."""
    now = now or utcnow()
    try:
        user = _vouched_account(session, provider, claims, second_factor_everyone)
    except SignInRefused as exc:
        _refused(session, vault, f"oidc:{provider.name}:{exc.reason}")
        raise
    link = session.scalar(select(OidcLink).where(OidcLink.user_id == user.id,
                                                 OidcLink.provider == provider.name))
    if link is None:
        session.add(OidcLink(user_id=user.id, provider=provider.name, subject=claims.subject,
                             last_sign_in_at=now))
    else:
        link.last_sign_in_at = now
    user.last_login_at = now
    session.flush()
    how = f"{provider.name} (acr {claims.acr or 'non transmis'}"
    how += f", SIRET {claims.siret})" if claims.siret else ")"
    _signed_in(session, vault, user, how)
    return user


def provider_refused(session: Session, vault: Vault, provider_name: str, reason: str) -> None:
    """The audit row of a provider's answer refused before any account was looked at (a
    state or nonce that does not match, a token for another audience, an expired one)."""
    _refused(session, vault, f"oidc:{provider_name}:{reason}")


def _vouched_account(session: Session, provider: OidcProvider, claims: ProviderClaims,
                     second_factor_everyone: bool) -> User:
    label = provider.label
    if provider.acr_values and claims.acr not in provider.acr_values:
        raise SignInRefused(f"Le niveau d'authentification transmis par {label} ne suffit "
                            "pas pour se connecter.", "acr")
    if provider.sirets and claims.siret and claims.siret not in provider.sirets:
        raise SignInRefused(f"Votre établissement (SIRET) n'est pas habilité à se connecter "
                            f"à ICL-I par {label}.", "siret")
    if not claims.email or not (claims.email_verified or provider.email_trust == "provider"):
        raise SignInRefused(f"{label} n'a pas transmis d'adresse e-mail vérifiée : connexion "
                            "impossible.", "email_unverified")
    user = session.scalar(select(User).where(
        User.email == users.normalise_email(claims.email)))
    if user is None:
        raise SignInRefused(f"Aucun compte ICL-I n'est ouvert pour l'adresse e-mail transmise "
                            f"par {label}. Demandez à votre administrateur·rice de vous créer "
                            "un compte.", "unknown_account")
    if not user.active:
        raise SignInRefused("Ce compte est désactivé. Contactez votre administrateur·rice.",
                            "inactive")
    if not user.habilitated_on(users.paris_today()):
        raise SignInRefused("Ce compte n'est pas habilité à cette date. Contactez votre "
                            "administrateur·rice.", "not_habilitated")
    if provider.structure_ids is not None and not _vouchable(user, provider.structure_ids):
        raise SignInRefused(f"{label} ne peut pas authentifier ce compte : connectez-vous avec "
                            "votre mot de passe.", "structure")
    # The subject already linked to another account, or this account linked to another
    # subject: the address moved from one person to another.
    other = session.scalar(select(OidcLink).where(
        OidcLink.provider == provider.name,
        or_(and_(OidcLink.subject == claims.subject, OidcLink.user_id != user.id),
            and_(OidcLink.user_id == user.id, OidcLink.subject != claims.subject))))
    if other is not None:
        raise SignInRefused(f"Cette adresse e-mail est liée à une autre identité {label}. "
                            "Contactez votre administrateur·rice.", "subject_mismatch")
    # A second factor the account must have, or one its owner chose to have, is not skipped
    # by signing in at a provider with one factor.
    if ((second_factor.required_for(user, second_factor_everyone)
         or second_factor.is_enrolled(session, user))
            and claims.acr not in provider.second_factor_acr):
        raise SignInRefused(f"Votre compte exige une authentification à deux facteurs : "
                            f"connectez-vous à {label} avec une méthode à deux facteurs, ou "
                            "avec votre mot de passe et votre code.", "second_factor")
    return user


def _vouchable(user: User, structure_ids: tuple[int, ...]) -> bool:
    """Only referents of the provider's structures: another role (administrator, CAT,
    director, DPO) needs a provider that vouches for every account."""
    return bool(user.roles) and all(
        role.role == "referent" and role.structure_id in structure_ids for role in user.roles)


def _signed_in(session: Session, vault: Vault, user: User, how: str) -> None:
    audit.record(session, vault.keyring, audit.Actor(user.id), "login", object_type="users",
                 object_ids=[user.id], purpose=how)


def _refused(session: Session, vault: Vault, reason: str) -> None:
    audit.record(session, vault.keyring, audit.Actor(None, "anonymous"), "login_failed",
                 purpose=reason)
