"""Accounts, their roles with scopes, login throttling counters, and what signs them in
besides a password: a TOTP second factor, its recovery codes, OpenID Connect links."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, new_uuid, utcnow
from shared.models.reference import Circonscription, Structure

ROLES = {
    "referent": "Référent·e de parcours",
    "facilitator": "Chargé·e d'animation territoriale",
    "director": "Direction signataire",
    "admin": "Administrateur·rice",
    "dpo": "Délégué·e à la protection des données",
}


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # professional login
    full_name: Mapped[str] = mapped_column(String(160))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime)
    # In every session cookie and compared on each request: raising it (logout, password
    # change or reset, (de)activation) ends every session of the account, copies included.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The habilitation: the account opens pages from the first day to the last one included
    # (Paris days); none: no bound. Past the end the worker deactivates it (issue 21).
    habilitation_starts_on: Mapped[date | None] = mapped_column(Date)
    habilitation_ends_on: Mapped[date | None] = mapped_column(Date)

    roles: Mapped[list[RoleAssignment]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    # The four attributes Flask-Login expects (no Flask import in shared/).
    @property
    def is_active(self) -> bool:
        return self.active

    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        """What the session cookie names: the account and its session version."""
        return f"{self.id}:{self.session_version}"

    def habilitated_on(self, day: date) -> bool:
        """Whether ``day`` is within the habilitation (its bounds included)."""
        return ((self.habilitation_starts_on is None or self.habilitation_starts_on <= day)
                and (self.habilitation_ends_on is None or day <= self.habilitation_ends_on))

    def has_role(self, role: str) -> bool:
        return any(r.role == role for r in self.roles)

    @property
    def structure_ids(self) -> set[int]:
        return {r.structure_id for r in self.roles if r.role == "referent" and r.structure_id}

    @property
    def managed_structure_ids(self) -> set[int]:
        return {r.structure_id for r in self.roles
                if r.role == "referent" and r.structure_id and r.is_manager}

    @property
    def circonscription_ids(self) -> set[int]:
        return {
            r.circonscription_id
            for r in self.roles
            if r.role == "facilitator" and r.circonscription_id
        }

    @property
    def institutions(self) -> set[str]:
        return {r.institution for r in self.roles if r.role == "director" and r.institution}

    @property
    def role_labels(self) -> list[str]:
        return sorted({ROLES[r.role] for r in self.roles})


class RoleAssignment(Base):
    __tablename__ = "role_assignments"
    __table_args__ = (
        CheckConstraint(
            "role IN ('referent', 'facilitator', 'director', 'admin', 'dpo')", name="known_role"
        ),
        CheckConstraint("role != 'referent' OR structure_id IS NOT NULL", name="referent_scope"),
        CheckConstraint(
            "role != 'facilitator' OR circonscription_id IS NOT NULL", name="facilitator_scope"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structures.id"))
    circonscription_id: Mapped[int | None] = mapped_column(ForeignKey("circonscriptions.id"))
    # A referent who manages the structure (chef·fe de service) sees all its sheets.
    is_manager: Mapped[bool] = mapped_column(Boolean, default=False)
    # A director signs the minutes for one institution ("departement" or "france_travail").
    institution: Mapped[str | None] = mapped_column(String(20))

    user: Mapped[User] = relationship(back_populates="roles")
    structure: Mapped[Structure | None] = relationship()
    circonscription: Mapped[Circonscription | None] = relationship()


class LoginThrottle(Base):
    """Failed-login counters keyed by a hash of the account or address (never the value)."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)


API_SCOPES = {
    "import": "Import des structures, circonscriptions, comptes et membres",
    "export": "Export des décisions pseudonymisées et des statistiques",
}


class ApiClient(Base):
    """A system of the département calling ``/api/v1`` with its own token.

    Only a SHA-256 of the token is stored (it is 256 random bits: a slow hash would add
    nothing): the token is shown once, at creation, and a stolen database cannot call the API.
    """

    __tablename__ = "api_clients"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[str] = mapped_column(String(60))  # keys of API_SCOPES, comma-separated
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime)

    @property
    def scope_set(self) -> set[str]:
        return set(filter(None, self.scopes.split(",")))


class SecondFactor(Base):
    """An account's TOTP secret, sealed (shared/protected.py); confirmed once the user typed a
    first code from their application."""

    __tablename__ = "second_factors"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         unique=True)
    secret: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    # The last 30-second step a code was accepted for: a code is never accepted twice.
    last_step: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def key_owner_uuid(self) -> str:
        # Its own data key: resetting the factor deletes it, and the secret with it.
        return self.uuid


class RecoveryCode(Base):
    """A one-time code that stands in for the TOTP code (a lost phone): argon2 hash only."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    code_hash: Mapped[str] = mapped_column(String(255))
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class OidcLink(Base):
    """The subject an OpenID Connect provider gave an account at its first sign-in there: a
    later sign-in with the same e-mail but another subject (an address given to someone
    else) is refused."""

    __tablename__ = "oidc_links"
    __table_args__ = (UniqueConstraint("provider", "subject"),
                      UniqueConstraint("user_id", "provider"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    provider: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime)
