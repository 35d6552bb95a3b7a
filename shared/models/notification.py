"""E-mail notifications as an outbox (like document jobs), and each user's choice of delivery."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from shared.db import Base, new_uuid, utcnow
from shared.models.icag import GlobalSupport
from shared.models.meeting import Meeting, MeetingMember, Member
from shared.models.sheet import Sheet
from shared.models.user import User

# Kinds of message; the topic is what a user chooses immediate mail or a daily digest for.
KINDS = {
    "sheet_submitted": "sheets_to_screen",
    "sheet_returned": "my_sheets",
    "sheet_inscribed": "my_sheets",
    "sheet_adjourned": "my_sheets",
    "sheet_brought_back": "my_sheets",
    "sheet_updated": "sheets_to_screen",
    "sheet_reassigned": "my_sheets",
    "feedback_ready": "my_sheets",
    "visa_pending": "visas",
    "visa_reminder": "visas",
    "minutes_correction": "minutes",
    "ag_term": "my_sheets",  # to the ACCO GLO counsellor (a member), always at once
    "convocation": "",  # to members of a session, always at once
    "digest": "",
}
KIND_LABELS = {
    "sheet_submitted": "Fiche soumise",
    "sheet_returned": "Fiche à compléter",
    "sheet_inscribed": "Fiche inscrite",
    "sheet_adjourned": "Fiche ajournée",
    "sheet_brought_back": "Retour en instance : fiche à actualiser",
    "sheet_updated": "Fiche actualisée pour un retour en instance",
    "sheet_reassigned": "Fiche confiée à votre suivi",
    "feedback_ready": "Fiche retour prête",
    "visa_pending": "PV à viser",
    "visa_reminder": "Relance de visa",
    "minutes_correction": "Correction du PV demandée",
    "ag_term": "Accompagnement global à renouveler",
    "convocation": "Convocation",
    "digest": "Récapitulatif quotidien",
}
TOPICS = {
    "sheets_to_screen": "Fiches soumises, resoumises ou actualisées pour un retour, à votre "
                        "circonscription",
    "my_sheets": "Suivi de vos fiches (à compléter, inscription, ajournement, retour en instance, "
                 "fiche retour, terme d'un accompagnement global)",
    "visas": "Procès-verbaux en attente de votre visa, et relances",
    "minutes": "Procès-verbaux : corrections demandées par les directions",
}
TOPIC_ROLES = {"sheets_to_screen": "facilitator", "my_sheets": "referent", "visas": "director",
               "minutes": "facilitator"}
MODES = {"immediate": "Un courriel à chaque événement", "digest": "Un récapitulatif par jour"}

STATES = {
    "queued": "En attente d'envoi",
    "sending": "En cours d'envoi",
    "sent": "Envoyé",
    "failed": "Échec définitif",
    "held": "Pour le récapitulatif du jour",
    "digested": "Envoyé dans un récapitulatif",
}


class Notification(Base):
    """One e-mail to one recipient, written in the transaction of the event it tells about.

    The text is composed by the worker when sending, from these ids: only references,
    pseudonyms, dates and links ever reach it (no identity: the worker cannot read one)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The idempotency key: the Message-ID, and the name of the .eml file in development.
    uuid: Mapped[str] = mapped_column(String(36), unique=True, default=new_uuid)
    # Events that could be recorded twice (a reminder, a daily digest) carry a unique key.
    dedup_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    meeting_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("meeting_members.id", ondelete="CASCADE"))
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"))
    sheet_id: Mapped[int | None] = mapped_column(ForeignKey("sheets.id"))
    # A usual member of an instance outside any session (the ACCO GLO counsellor).
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    # The accompagnement global whose term is near.
    global_support_id: Mapped[int | None] = mapped_column(ForeignKey("global_supports.id"))
    # A document the message attaches (a convocation's agenda): sent once it is built.
    document_job_id: Mapped[int | None] = mapped_column(ForeignKey("document_jobs.id"))
    # A digest's items point to the digest that carried them.
    digest_id: Mapped[int | None] = mapped_column(ForeignKey("notifications.id"))
    status: Mapped[str] = mapped_column(String(10), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    error_code: Mapped[str | None] = mapped_column(String(40))
    # French, for administrators; the SMTP reply code only, never the server's text.
    error_message: Mapped[str | None] = mapped_column(String(400))

    user: Mapped[User | None] = relationship()
    meeting_member: Mapped[MeetingMember | None] = relationship()
    member: Mapped[Member | None] = relationship()
    global_support: Mapped[GlobalSupport | None] = relationship()
    meeting: Mapped[Meeting | None] = relationship()
    sheet: Mapped[Sheet | None] = relationship()

    @property
    def status_label(self) -> str:
        return STATES.get(self.status, self.status)


class NotificationPreference(Base):
    """A user's delivery mode per topic; no row means immediate mail."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    topic: Mapped[str] = mapped_column(String(20), primary_key=True)
    mode: Mapped[str] = mapped_column(String(10), default="immediate")
