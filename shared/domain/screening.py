"""Texts typed during a session (avis motivation, préconisations, adjournment reasons, agenda
titles): what in them looks identifying, before they reach the agenda, the PV, the fiche
retour and the next dossier, which designate the person by reference only (issue 15).

The person's own identity (any token of name, birth name, birth date, phone, CAF, France
Travail id, e-mail, address) can never be let through: the text must be rephrased. Other
findings (a third party's name, an employer…) may be dismissed one by one with a reason
from ``DISMISS_REASONS``; the dismissals are audited as counts per kind and reason, never
words. Names of structures, circonscriptions and instance members in the reference lists
are not findings ("présentation de l'ALI de Bobigny" for a person called Ali).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared import deidentify
from shared.crypto import normalise_digits
from shared.domain import audit
from shared.domain.sheets import GUARD_LABELS, identity_spans
from shared.encrypted import Vault
from shared.errors import InvalidInputError
from shared.models import Circonscription, Member, Structure

# Why a finding designates nobody here: codes are audited, labels shown.
DISMISS_REASONS = {
    "partenaire": "nom d'un partenaire, d'un service ou d'un dispositif",
    "professionnel": "nom d'un·e professionnel·le",
    "lieu": "lieu qui ne désigne personne",
    "mot_courant": "mot courant repéré à tort",
}


@dataclass(frozen=True)
class SessionFinding:
    """One span of a session text that looks identifying. ``text`` is never logged."""

    label: str  # the text's label: "Motivation", "Action 1", "Intitulé"…
    start: int
    end: int
    kind: str  # an identity field (``nom``…) or a detection kind (``person``…)
    own_identity: bool  # the person's own identity: never dismissable
    text: str = field(repr=False)

    @property
    def key(self) -> str:
        """Names the finding in a form. The words' digest is part of it: a dismissal posted
        for a text since edited never applies to other words at the same place."""
        digest = hashlib.sha256(self.text.encode()).hexdigest()[:12]
        return f"{self.label}:{self.start}:{self.end}:{self.kind}:{digest}"

    @property
    def description(self) -> str:
        return (GUARD_LABELS[self.kind] if self.own_identity
                else deidentify.KINDS[self.kind])


class TextsNeedReviewError(InvalidInputError):
    """Session texts hold identifying words. The message names the kinds found per text,
    never the words; ``reviews`` lets the page highlight them in place."""

    def __init__(self, intro: str, texts: dict[str, str], findings: list[SessionFinding],
                 dismissals: dict[str, str]) -> None:
        pending = [f for f in findings if f.own_identity or f.key not in dismissals]
        problems: dict[str, list[str]] = {}
        # The person's own identity first, in the guard's order; then the other findings.
        for finding in sorted(pending, key=lambda f: (not f.own_identity, list(
                GUARD_LABELS).index(f.kind) if f.own_identity else f.start)):
            problems.setdefault(finding.label, []).append(finding.description)
        self.problems = {label: list(dict.fromkeys(kinds)) for label, kinds in problems.items()}
        found = " ; ".join(f"{label} : {', '.join(kinds)}"
                           for label, kinds in self.problems.items())
        super().__init__(f"{intro} {found}.")
        self.dismissals = dismissals
        self.reviews = []
        for label, text in texts.items():
            of_text = [f for f in findings if f.label == label]
            if of_text:
                self.reviews.append({"label": label, "findings": of_text,
                                     "segments": deidentify.segments(
                                         text, of_text, lambda f: (f.start, f.end))})


def reference_names(session: Session) -> list[str]:
    """Names from the reference lists that designate no person accompanied: structures,
    circonscriptions, the instances' members."""
    names = [*session.scalars(select(Structure.name)),
             *session.scalars(select(Circonscription.name)),
             *session.scalars(select(Member.name))]
    return sorted({name.strip() for name in names if name and name.strip()}, key=len,
                  reverse=True)


def _fold(text: str) -> str:
    """Lower case without accents, one character for one, so positions stay the same."""
    folded = []
    for char in text.replace("’", "'"):
        base = unicodedata.normalize("NFKD", char)[:1] or char
        folded.append(base.lower() if len(base.lower()) == 1 else base)
    return "".join(folded)


def _reference_spans(text: str, names: list[str]) -> list[tuple[int, int]]:
    if not names:
        return []
    pattern = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(_fold(n)) for n in names)
                         + r")(?!\w)")
    return [(m.start(), m.end()) for m in pattern.finditer(_fold(text))]


# The assistant's kinds that hold a number or an address the person's own identity may have.
_OWN_KINDS = {"phone": "telephone", "caf": "numero_caf", "france_travail":
              "identifiant_france_travail", "birth_date": "date_naissance", "email": "email"}


def screen_session_texts(texts: dict[str, str],
                         identities: Sequence[dict[str, str]] = (),
                         names: list[str] | None = None) -> list[SessionFinding]:
    """Every identifying span of ``texts`` (label -> text): the person's own identity (as each
    structure recorded it, ``identities``) and the de-identification assistant's findings.
    A reference name (``names``) hides the assistant's findings inside it, and the person's
    own name only where the reference holds other words ("l'ALI de Bobigny" for a person
    called Ali, never a member whose name is the person's)."""
    findings = []
    for label, text in texts.items():
        inside = _reference_spans(text, names or [])
        own: list[SessionFinding] = []
        # Of overlapping parts of the identity ("benali" in an e-mail address) the longest
        # is marked.
        spans = [span for identity in identities for span in identity_spans(identity, text)]
        for start, end, key in sorted(spans, key=lambda span: span[0] - span[1]):
            if all(end <= f.start or start >= f.end for f in own):
                own.append(SessionFinding(label, start, end, key, True, text[start:end]))
        own = [f for f in own
               if not any(start <= f.start and f.end <= end and _other_words(text, start, end, own)
                          for start, end in inside)]
        others = []
        for d in deidentify.analyse(text):
            if any(d.start < f.end and f.start < d.end for f in own):
                continue
            if any(start <= d.start and d.end <= end for start, end in inside):
                continue
            # A number the assistant found that is the person's own, in a form the guard
            # does not know: never dismissable either.
            mine = d.kind in _OWN_KINDS and any(
                _same_value(d.kind, d.text, identity.get(_OWN_KINDS[d.kind], ""))
                for identity in identities)
            others.append(SessionFinding(label, d.start, d.end,
                                         _OWN_KINDS[d.kind] if mine else d.kind, mine, d.text))
        findings += own + others
    return sorted(findings, key=lambda f: (list(texts).index(f.label), f.start))


def _other_words(text: str, start: int, end: int, own: list[SessionFinding]) -> bool:
    """Whether the reference name at ``text[start:end]`` holds a word that is no part of the
    person's identity found there."""
    return any(not any(f.start <= start + m.start() and start + m.end() <= f.end for f in own)
               for m in re.finditer(r"\w+", text[start:end]))


def _same_value(kind: str, found: str, own: str) -> bool:
    if not own:
        return False
    if kind == "email":
        return found.strip().lower() == own.strip().lower()
    if kind == "birth_date":
        return bool(identity_spans({"date_naissance": own}, found))
    found, own = normalise_digits(found), normalise_digits(own)
    return bool(own) and (found == own or (kind == "phone" and found[-9:] == own[-9:]))


def review_session_texts(session: Session, texts: dict[str, str],
                         identities: Sequence[dict[str, str]], dismissals: dict[str, str],
                         intro: str) -> list[SessionFinding]:
    """The findings of ``texts``, all dismissed with a reason; raises ``TextsNeedReviewError``
    while one is the person's own identity or is not dismissed."""
    findings = screen_session_texts({k: v for k, v in texts.items() if v}, identities,
                                    reference_names(session))
    valid = {key: reason for key, reason in dismissals.items() if reason in DISMISS_REASONS}
    if any(f.own_identity or f.key not in valid for f in findings):
        raise TextsNeedReviewError(intro, texts, findings, valid)
    return findings


def audit_dismissals(session: Session, vault: Vault, object_type: str, object_id: int,
                     findings: list[SessionFinding], dismissals: dict[str, str]) -> None:
    """The facilitator's dismissals, as counts per kind and reason (never the words)."""
    if not findings:
        return
    counts: Counter[tuple[str, str]] = Counter((f.kind, dismissals[f.key]) for f in findings)
    audit.record(session, vault.keyring, vault.actor, "screening_dismissed",
                 object_type=object_type, object_ids=[object_id],
                 fields=[f"{kind}/{reason}/{count}"
                         for (kind, reason), count in sorted(counts.items())])

