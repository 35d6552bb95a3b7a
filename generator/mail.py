"""E-mail: compose a notification's message (French, references and links only) and hand it
to the SMTP server, or write it as a private .eml file in development.

Composed here, in the worker, from ids: this process cannot decrypt an identity, so no
message can carry one. Staff addresses never reach the logs.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from sqlalchemy import select
from sqlalchemy.orm import Session

from generator.contexts import french_date, french_time, slot_time
from shared.config import Settings
from shared.domain import notifications
from shared.files import write_private
from shared.models import AgendaItem, GeneratedDocument, Notification, SheetEvent

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
SMTP_TIMEOUT = 30  # seconds
# Staff (a user account) read the detail in the application; instance members have no
# account: they answer through the signed link of their message, so are never sent to log in.
FOOTER = ("Ce message ne contient aucune donnée personnelle : le détail se consulte dans "
          "l'application, après connexion.\n"
          "Document couvert par le secret professionnel (art. L.262-44 CASF).")
MEMBER_FOOTER = ("Ce message ne contient aucune donnée personnelle.\n"
                 "Document couvert par le secret professionnel (art. L.262-44 CASF).")


class MailError(Exception):
    """Delivery failed; ``code`` is the SMTP reply code or a short word, never the text of
    the server's reply (it may quote the address)."""

    def __init__(self, code: str, temporary: bool) -> None:
        super().__init__(f"mail delivery failed ({code})")
        self.code, self.temporary = code, temporary


@dataclass(frozen=True)
class Text:
    subject: str
    paragraphs: list[str]
    link: str  # a path of the app


# -- composition ----------------------------------------------------------------------------
def _local(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(notifications.PARIS)


def _when(moment: datetime) -> str:
    """A session's start, stored in local time."""
    return f"{french_date(moment.date())} à {french_time(moment)}"


def _sheet_label(n: Notification) -> str:
    return f"{n.sheet.reference} ({n.sheet.beneficiary.pseudonym})"


def _session_label(n: Notification) -> str:
    meeting = n.meeting
    return f"la séance du {french_date(meeting.starts_at.date())} " \
           f"(circonscription de {meeting.circonscription.name})"


def _sheet_submitted(session: Session, n: Notification) -> Text:
    again = session.scalar(select(SheetEvent.id).where(SheetEvent.sheet_id == n.sheet_id,
                                                       SheetEvent.action == "return").limit(1))
    verb = "resoumise" if again else "soumise"
    return Text(f"Fiche {n.sheet.reference} {verb} à l'instance",
                [f"La fiche {_sheet_label(n)} a été {verb} à l'instance de la circonscription "
                 f"de {n.sheet.circonscription.name}.",
                 "Elle attend votre examen de recevabilité."], f"/fiches/{n.sheet_id}")


def _sheet_returned(session: Session, n: Notification) -> Text:
    return Text(f"Fiche {n.sheet.reference} à compléter",
                [f"L'animation de l'instance vous renvoie la fiche {_sheet_label(n)} pour "
                 "complément.",
                 "Le motif figure dans l'historique de la fiche. Complétez-la puis soumettez-la "
                 "à nouveau."], f"/fiches/{n.sheet_id}")


def _sheet_inscribed(session: Session, n: Notification) -> Text:
    item = session.scalar(select(AgendaItem).where(AgendaItem.meeting_id == n.meeting_id,
                                                   AgendaItem.sheet_id == n.sheet_id))
    slot = f", créneau de {slot_time(item.time_slot)}" if item and item.time_slot else ""
    place = f" Lieu : {n.meeting.place}." if n.meeting.place else ""
    return Text(f"Fiche {n.sheet.reference} inscrite à la séance du "
                f"{n.meeting.starts_at:%d/%m/%Y}",
                [f"La fiche {_sheet_label(n)} est inscrite à l'ordre du jour de "
                 f"{_session_label(n)}{slot}.{place}",
                 "Vous êtes attendu·e à ce créneau seulement : chaque référent·e n'assiste "
                 "qu'à l'examen de ses situations."], f"/fiches/{n.sheet_id}")


def _sheet_adjourned(session: Session, n: Notification) -> Text:
    at = f" à {_session_label(n)}" if n.meeting is not None else ""
    return Text(f"Fiche {n.sheet.reference} ajournée",
                [f"L'examen de la fiche {_sheet_label(n)}{at} est ajourné.",
                 "Le motif figure dans l'historique de la fiche ; elle sera proposée à une "
                 "prochaine séance."], f"/fiches/{n.sheet_id}")


def _sheet_brought_back(session: Session, n: Notification) -> Text:
    return Text(f"Retour en instance : fiche {n.sheet.reference} à actualiser",
                [f"La situation {_sheet_label(n)} revient devant l'instance, comme prévu lors "
                 "de son dernier passage.",
                 "Actualisez les textes de la fiche (l'identité est déjà enregistrée), puis "
                 "renvoyez-la : elle sera proposée à la séance la plus proche de la date de "
                 "retour."], f"/fiches/{n.sheet_id}")


def _sheet_updated(session: Session, n: Notification) -> Text:
    return Text(f"Fiche {n.sheet.reference} actualisée pour un retour en instance",
                [f"Le ou la référent·e a actualisé la fiche {_sheet_label(n)} pour son retour "
                 "devant l'instance.",
                 "Elle est proposée parmi les situations à inscrire."], f"/fiches/{n.sheet_id}")


def _sheet_reassigned(session: Session, n: Notification) -> Text:
    return Text(f"Fiche {n.sheet.reference} confiée à votre suivi",
                [f"La fiche {_sheet_label(n)} vous est confiée : la personne qui la suivait "
                 "a quitté la structure ou change de fonction.",
                 "Elle figure désormais parmi vos fiches, avec son historique."],
                f"/fiches/{n.sheet_id}")


def _feedback_ready(session: Session, n: Notification) -> Text:
    return Text(f"Avis rendu : fiche retour {n.sheet.reference} disponible",
                [f"L'instance a rendu son avis sur la fiche {_sheet_label(n)} à "
                 f"{_session_label(n)}.",
                 "La fiche retour est prête : téléchargez-la depuis la fiche pour informer la "
                 "personne de l'avis et des préconisations."], f"/fiches/{n.sheet_id}")


def _visa(session: Session, n: Notification) -> Text:
    reminder = n.kind == "visa_reminder"
    return Text(("Relance : " if reminder else "")
                + f"procès-verbal de la séance du {n.meeting.starts_at:%d/%m/%Y} "
                  "en attente de votre visa",
                [f"Le procès-verbal de {_session_label(n)} "
                 + ("attend toujours votre visa." if reminder else "attend votre visa."),
                 "Lisez-le puis apposez votre visa depuis la page des visas."], "/visas/")


def _minutes_correction(session: Session, n: Notification) -> Text:
    return Text(f"Procès-verbal de la séance du {n.meeting.starts_at:%d/%m/%Y} : correction "
                "demandée",
                [f"Une direction signataire demande une correction du procès-verbal de "
                 f"{_session_label(n)}, qui revient à l'état « PV rédigé ».",
                 "Lisez son commentaire sur la page de la séance, corrigez, régénérez le "
                 "procès-verbal puis renvoyez-le en signature."],
                f"/seances/{n.meeting_id}#documents")


def _global_support_term(session: Session, n: Notification) -> Text:
    support = n.global_support
    return Text(f"Accompagnement global {n.sheet.reference} : terme le "
                f"{support.term_ends_on:%d/%m/%Y}",
                [f"L'accompagnement global de la situation {_sheet_label(n)} arrive à son "
                 f"terme le {french_date(support.term_ends_on)}.",
                 "Préparez avec la personne son renouvellement ou sa sortie, à inscrire à une "
                 "prochaine séance de l'instance (partie ICAG)."],
                f"/fiches/{n.sheet_id}" if n.user_id is not None else "/")


def _convocation(session: Session, n: Notification, settings: Settings) -> Text:
    meeting, row = n.meeting, n.meeting_member
    token = notifications.answer_token(settings.link_key, row)
    where = meeting.place or ""
    if meeting.video_link:
        where += (" ; " if where else "") + f"visioconférence : {meeting.video_link}"
    return Text(f"Convocation : ICL-I {meeting.circonscription.name}, séance du "
                f"{meeting.starts_at:%d/%m/%Y}",
                ["Madame, Monsieur,",
                 f"Vous êtes convoqué·e à la séance de l'instance de concertation locale "
                 f"insertion de la circonscription de {meeting.circonscription.name}, le "
                 f"{_when(meeting.starts_at)}. Lieu : {where}.",
                 "L'ordre du jour, pseudonymisé, est joint à ce message.",
                 "Merci d'indiquer votre réponse (présence confirmée, déclinée, ou "
                 "remplacement) avec le lien personnel ci-dessous. Il ne sert qu'une fois, "
                 "jusqu'à la séance, et ne demande pas de mot de passe."],
                f"/convocation/{meeting.id}/{token}")


def _digest(session: Session, n: Notification, settings: Settings) -> Text:
    items = notifications.digest_items(session, n)
    lines = []
    for item in items:
        text = COMPOSERS[item.kind](session, item, settings)
        lines.append(f"- {text.subject}\n  {settings.base_url}{text.link}")
    return Text(f"Récapitulatif quotidien : {len(items)} notification(s)",
                ["Voici les événements du jour qui vous concernent :", "\n".join(lines)],
                "/compte")


def _simple(compose):
    return lambda session, n, _settings: compose(session, n)


COMPOSERS = {
    "sheet_submitted": _simple(_sheet_submitted),
    "sheet_returned": _simple(_sheet_returned),
    "sheet_inscribed": _simple(_sheet_inscribed),
    "sheet_adjourned": _simple(_sheet_adjourned),
    "sheet_brought_back": _simple(_sheet_brought_back),
    "sheet_updated": _simple(_sheet_updated),
    "sheet_reassigned": _simple(_sheet_reassigned),
    "feedback_ready": _simple(_feedback_ready),
    "visa_pending": _simple(_visa),
    "visa_reminder": _simple(_visa),
    "minutes_correction": _simple(_minutes_correction),
    "ag_term": _simple(_global_support_term),
    "convocation": _convocation,
    "digest": _digest,
}


def compose(session: Session, settings: Settings, n: Notification, recipient: str,
            attachment: GeneratedDocument | None = None,
            attachment_body: bytes | None = None) -> EmailMessage:
    """The message of one notification; its Message-ID is the row's idempotency key."""
    text = COMPOSERS[n.kind](session, n, settings)
    message = EmailMessage()
    message["Subject"] = f"[ICL-I] {text.subject}"
    message["From"] = settings.mail_from
    message["To"] = recipient
    message["Date"] = format_datetime(_local(n.created_at))
    message["Message-ID"] = make_msgid(idstring=n.uuid, domain="icli.invalid")
    message["Auto-Submitted"] = "auto-generated"
    preferences = ("" if n.user_id is None else
                   f"\nCourriel immédiat ou récapitulatif quotidien : {settings.base_url}/compte")
    footer = MEMBER_FOOTER if n.user_id is None else FOOTER
    body = "\n\n".join([*text.paragraphs, f"{settings.base_url}{text.link}", "--",
                        footer + preferences])
    message.set_content(body)
    if attachment is not None and attachment_body is not None:
        message.add_attachment(attachment_body, maintype="application",
                               subtype=DOCX.split("/", 1)[1], filename=attachment.filename)
    return message


# -- delivery -------------------------------------------------------------------------------
def deliver(settings: Settings, message: EmailMessage, recipient: str, key: str) -> None:
    """Hand the message over once; MailError(temporary=…) on failure."""
    if settings.smtp is None:  # development: a file the admin page lists
        write_private(settings.mail_outbox_dir / f"{key}.eml", message.as_string(),
                      exclusive=False)
        return
    target = settings.smtp
    try:
        if target.security == "tls":
            client = smtplib.SMTP_SSL(target.host, target.port, timeout=SMTP_TIMEOUT,
                                      context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=SMTP_TIMEOUT)
        with client:
            if target.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if target.username:
                client.login(target.username, target.password)
            client.send_message(message, to_addrs=[recipient])
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _text in exc.recipients.values()]
        raise MailError(str(codes[0] if codes else 550),
                        temporary=all(400 <= c < 500 for c in codes)) from None
    except smtplib.SMTPResponseException as exc:  # refused sender, data, authentication…
        raise MailError(str(exc.smtp_code), temporary=400 <= exc.smtp_code < 500) from None
    except smtplib.SMTPNotSupportedError:
        raise MailError("starttls", temporary=False) from None
    except (smtplib.SMTPException, OSError) as exc:  # disconnected, refused, timed out
        raise MailError(type(exc).__name__, temporary=True) from None
