"""Sessions of the ICL-I (séances, called meetings in code), their agenda and decisions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
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
from shared.models.sheet import Sheet

MEETING_STATES = {
    "planifiee": "Planifiée",
    "odj_en_construction": "ODJ en construction",
    "convoquee": "Convoquée",
    "tenue": "Tenue",
    "avis_saisis": "Avis saisis",
    "pv_redige": "PV rédigé",
    "pv_en_signature": "PV en signature",
    "pv_signe": "PV signé / diffusé",
    "cloturee": "Clôturée",
    "annulee": "Annulée",
    "reportee": "Reportée",
}

ANSWERS = {"non_renseigne": "Non renseigné", "confirme": "Confirmé", "decline": "Décliné",
           "remplace": "Remplacé par"}
ATTENDANCE = {"present": "Présent·e", "excuse": "Excusé·e", "absent": "Absent·e",
              "remplace": "Remplacé·e par"}
MEMBER_KINDS = {"permanent": "Membre permanent", "invite": "Invité"}
ICAG_KINDS = {"entree": "Entrée", "renouvellement": "Renouvellement", "sortie": "Sortie"}
FORMAL_DECISION = {"": "Non : avis définitif", "departement": "Oui, par le Département",
                   "france_travail": "Oui, par France Travail"}
# What the competent institution decided on an avis that needed its formal decision.
FORMAL_OUTCOMES = {"conforme": "Décision conforme à l'avis",
                   "modifiee": "Décision différente de l'avis",
                   "refusee": "Avis non suivi"}
FORMAL_STATES = {"en_attente": "En attente", "prise": "Prise"}
# Why an avis was changed: a correction before the PV goes to signature, or an erratum after.
REVISION_KINDS = {"correction": "Correction avant signature", "erratum": "Erratum après signature"}

AGENDA_PARTS = {
    "partenariat": "Partenariat, interconnaissance, projets territoriaux",
    "situation": "Études de situations",
    "icag": "ICAG : entrées, renouvellements, sorties",
    "suivi": "Suivi des préconisations",
}


class Meeting(Base):
    __tablename__ = "meetings"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    circonscription_id: Mapped[int] = mapped_column(ForeignKey("circonscriptions.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    place: Mapped[str] = mapped_column(String(200), default="")
    video_link: Mapped[str] = mapped_column(String(300), default="")
    state: Mapped[str] = mapped_column(String(24), default="planifiee")
    # Deadlines in days before the session: sheets cut-off (J-x), dossier sent (J-y).
    cutoff_days: Mapped[int] = mapped_column(Integer, default=10)
    dossier_days: Mapped[int] = mapped_column(Integer, default=5)
    # Why it was cancelled or postponed (organisational, never about a person).
    state_reason: Mapped[str] = mapped_column(String(500), default="")
    postponed_to_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"))
    # Bumped on every agenda change: document jobs are idempotent per content version.
    content_version: Mapped[int] = mapped_column(Integer, default=1)
    # The version sent with the convocations; a later change is a late addition.
    frozen_version: Mapped[int | None] = mapped_column(Integer)
    # The secrétaire de séance, chosen when the session is held: an invited member, or one
    # of the circonscription's facilitators (the CAT); at most one of the two is set.
    secretary_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    secretary_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    circonscription: Mapped[Circonscription] = relationship()
    items: Mapped[list[AgendaItem]] = relationship(
        back_populates="meeting", order_by="AgendaItem.position", cascade="all, delete-orphan"
    )
    members: Mapped[list[MeetingMember]] = relationship(
        back_populates="meeting", order_by="MeetingMember.id", cascade="all, delete-orphan"
    )

    @property
    def state_label(self) -> str:
        return MEETING_STATES.get(self.state, self.state)

    @property
    def day(self) -> date:
        return self.starts_at.date()


class Schedule(Base):
    """The monthly rhythm of a circonscription's ICL-I (e.g. the 2nd Tuesday at 14:00)."""

    __tablename__ = "meeting_schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    circonscription_id: Mapped[int] = mapped_column(ForeignKey("circonscriptions.id"),
                                                    unique=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    week_of_month: Mapped[int] = mapped_column(Integer)  # 1..4, or -1 for the last one
    time: Mapped[str] = mapped_column(String(5))  # "14:00"
    place: Mapped[str] = mapped_column(String(200), default="")
    video_link: Mapped[str] = mapped_column(String(300), default="")
    cutoff_days: Mapped[int] = mapped_column(Integer, default=10)
    dossier_days: Mapped[int] = mapped_column(Integer, default=5)

    circonscription: Mapped[Circonscription] = relationship()


class Member(Base):
    """A usual member of a circonscription's instance (professional contact, not a case)."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(primary_key=True)
    circonscription_id: Mapped[int] = mapped_column(ForeignKey("circonscriptions.id"),
                                                    index=True)
    structure_id: Mapped[int | None] = mapped_column(ForeignKey("structures.id"))
    name: Mapped[str] = mapped_column(String(160))
    function: Mapped[str] = mapped_column(String(160), default="")
    # Professional address the convocations go to (none: convoked by other means).
    email: Mapped[str] = mapped_column(String(254), default="")
    kind: Mapped[str] = mapped_column(String(10), default="permanent")
    # The France Travail "ACCO GLO" counsellor: invited when AG items are on the agenda.
    acco_glo: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # The suppléant·e: invited in the member's place once the member declines a session.
    substitute_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))

    structure: Mapped[Structure | None] = relationship()
    substitute: Mapped[Member | None] = relationship(remote_side="Member.id")


class MeetingMember(Base):
    """A member invited to one session: their answer, then their attendance."""

    __tablename__ = "meeting_members"
    __table_args__ = (UniqueConstraint("meeting_id", "member_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"),
                                            index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    answer: Mapped[str] = mapped_column(String(15), default="non_renseigne")
    attendance: Mapped[str] = mapped_column(String(10), default="")
    replacement: Mapped[str] = mapped_column(String(160), default="")  # "remplacé par"
    # The convocation's answer link works while this is set; using it clears it (once only).
    answer_nonce: Mapped[str | None] = mapped_column(String(32))

    meeting: Mapped[Meeting] = relationship(back_populates="members")
    member: Mapped[Member] = relationship(lazy="joined")


class AgendaItem(Base):
    __tablename__ = "agenda_items"
    __table_args__ = (UniqueConstraint("meeting_id", "sheet_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    part: Mapped[str] = mapped_column(String(20))  # key of AGENDA_PARTS
    sheet_id: Mapped[int | None] = mapped_column(ForeignKey("sheets.id"))
    # Non-case items (partnership) carry a title; it names no beneficiary.
    title: Mapped[str] = mapped_column(String(200), default="")
    time_slot: Mapped[str] = mapped_column(String(5), default="")  # "14:30"
    duration_minutes: Mapped[int] = mapped_column(Integer, default=15)
    icag_kind: Mapped[str] = mapped_column(String(15), default="")  # key of ICAG_KINDS
    late: Mapped[bool] = mapped_column(Boolean, default=False)  # added after the freeze
    # "" while pending; "examine" or "ajourne" once the session dealt with it.
    outcome: Mapped[str] = mapped_column(String(10), default="")
    adjourn_reason: Mapped[str] = mapped_column(Text, default="")  # organisational
    # Partnership items: who presents (a structure and a role, never a person's name), then
    # what was said and decided, and when to come back to it. Screened like every session text.
    presenter_structure: Mapped[str] = mapped_column(String(160), default="")
    presenter_role: Mapped[str] = mapped_column(String(160), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    next_step: Mapped[str] = mapped_column(Text, default="")
    follow_up_on: Mapped[date | None] = mapped_column(Date, index=True)
    follow_up_done_on: Mapped[date | None] = mapped_column(Date)

    meeting: Mapped[Meeting] = relationship(back_populates="items")
    sheet: Mapped[Sheet | None] = relationship()

    @property
    def presenter(self) -> str:
        return " – ".join(p for p in (self.presenter_structure, self.presenter_role) if p)


class Decision(Base):
    """The avis of the instance on one sheet at one session."""

    __tablename__ = "decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    sheet_id: Mapped[int] = mapped_column(ForeignKey("sheets.id"), index=True)
    avis: Mapped[str] = mapped_column(String(40))  # code of reference data
    # Still to be decided formally by: "" (the avis is final), "departement", "france_travail"
    formal_decision_by: Mapped[str] = mapped_column(String(20), default="")
    come_back_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    motivation: Mapped[str | None] = mapped_column(Text)  # content chain

    sheet: Mapped[Sheet] = relationship()
    meeting: Mapped[Meeting] = relationship()
    actions: Mapped[list[DecisionAction]] = relationship(
        back_populates="decision", order_by="DecisionAction.id", cascade="all, delete-orphan"
    )
    formal: Mapped[FormalDecision | None] = relationship(back_populates="decision",
                                                         cascade="all, delete-orphan")
    revisions: Mapped[list[AvisRevision]] = relationship(
        back_populates="decision", order_by="AvisRevision.id", cascade="all, delete-orphan"
    )

    @property
    def key_owner_uuid(self) -> str:
        return self.sheet.beneficiary.uuid

    @property
    def formal_state(self) -> str:
        """"" when the avis is final, else en_attente until the decision is recorded."""
        if not self.formal_decision_by:
            return ""
        return "prise" if self.formal is not None else "en_attente"


class DecisionAction(Base):
    """A préconisation: an action, the structure that carries it, a due date, its state."""

    __tablename__ = "decision_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"),
                                             index=True)
    owner_structure_id: Mapped[int | None] = mapped_column(ForeignKey("structures.id"))
    due_on: Mapped[date | None] = mapped_column(Date, index=True)
    done_on: Mapped[date | None] = mapped_column(Date)
    label: Mapped[str | None] = mapped_column(Text)  # content chain: may describe the case

    decision: Mapped[Decision] = relationship(back_populates="actions")
    owner: Mapped[Structure | None] = relationship()

    @property
    def key_owner_uuid(self) -> str:
        return self.decision.sheet.beneficiary.uuid


class FormalDecision(Base):
    """The decision itself of the institution competent for an avis (second level): who took
    it, when, and what; one per avis, recorded once taken."""

    __tablename__ = "formal_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"),
                                             unique=True)
    outcome: Mapped[str] = mapped_column(String(20))  # key of FORMAL_OUTCOMES
    decided_on: Mapped[date] = mapped_column(Date)
    # The professional who decided (e.g. "DGA Solidarités, par délégation"): no case data.
    author: Mapped[str] = mapped_column(String(160))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    detail: Mapped[str | None] = mapped_column(Text)  # content chain

    decision: Mapped[Decision] = relationship(back_populates="formal")

    @property
    def key_owner_uuid(self) -> str:
        return self.decision.sheet.beneficiary.uuid


class AvisRevision(Base):
    """An earlier version of an avis, kept when it is corrected (or amended by erratum)."""

    __tablename__ = "avis_revisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    decision_id: Mapped[int] = mapped_column(ForeignKey("decisions.id", ondelete="CASCADE"),
                                             index=True)
    kind: Mapped[str] = mapped_column(String(10))  # key of REVISION_KINDS
    revised_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revised_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    avis: Mapped[str] = mapped_column(String(40))
    formal_decision_by: Mapped[str] = mapped_column(String(20), default="")
    come_back_on: Mapped[date | None] = mapped_column(Date)
    # Content chain, JSON: the motivation and préconisations as they were, and why changed.
    previous: Mapped[str | None] = mapped_column(Text)

    decision: Mapped[Decision] = relationship(back_populates="revisions")

    @property
    def key_owner_uuid(self) -> str:
        return self.decision.sheet.beneficiary.uuid
