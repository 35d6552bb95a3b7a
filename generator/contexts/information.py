"""La note d'information de la personne (RGPD information, docs/domain.md), by reference."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from generator.contexts.formatting import clean, french_date
from shared.config import DEFAULT_DPO_CONTACT
from shared.domain.reference import reference_labels
from shared.encrypted import Vault
from shared.models import Meeting, Sheet

# RGPD information of the person (docs/domain.md); the DPO's contact comes from the settings
# (ICLI_DPO_CONTACT); an administrator may upload a template with the local wording (the
# retention validated with the archives).
RETENTION = ("Vos informations sont conservées tant que votre situation est suivie par "
             "l'instance, puis au plus deux ans après le dernier contact avec "
             "vous\u00a0; elles sont ensuite détruites. Les procès-verbaux, qui ne "
             "mentionnent que la référence de votre dossier, sont archivés selon les règles "
             "des archives publiques.")


def information_context(session: Session, vault: Vault, meeting: Meeting | None, version: int,
                        today: date, sheet: Sheet | None = None, *,
                        dpo_contact: str = DEFAULT_DPO_CONTACT) -> dict:
    """The person's information note, by sheet reference: the referent writes the name in by
    hand or beside it (this process never holds the identity chain). ``dpo_contact``: the
    instance's (``Settings.dpo_contact``)."""
    if sheet is None:
        raise ValueError("the information note is built for one sheet")
    motifs = reference_labels(session)["motif"]
    return {
        "reference": clean(sheet.reference),
        "structure": clean(sheet.structure.name),
        "circonscription": clean(sheet.circonscription.name),
        "motif": clean(motifs.get(sheet.motif or "", "")) or "à préciser avec votre référent·e",
        "retention": RETENTION,
        "dpo_contact": clean(dpo_contact),
        "version": str(version),
        "generated_on": french_date(today),
    }

