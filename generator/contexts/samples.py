"""Fictitious contexts with every variable and every loop filled: the test render of an
uploaded template, and the worker's warm-up. Fictitious values only."""

from __future__ import annotations

from generator.contexts.information import RETENTION
from generator.contexts.minutes import SIGNATORIES


def _sample_header() -> dict:
    return {"circonscription": "Saint-Denis", "meeting_date": "mardi 15 décembre 2026",
            "meeting_time": "14\u00a0h\u00a000", "place": "Salle du conseil, 2 rue de l'Exemple",
            "facilitators": "Camille Exemple", "version": "3",
            "generated_on": "mardi 8 décembre 2026"}


def _sample_entry(number: str, slot: str, reference: str, pseudonym: str, icag: str = "",
                  passage: str = "Nouvelle situation") -> dict:
    return {"number": number, "time_slot": slot, "reference": reference,
            "pseudonym": pseudonym, "label": f"{reference} – {pseudonym}",
            "structure": "ALI de Saint-Denis", "structure_type": "Agence Locale d'Insertion",
            "motif": "Demande de réorientation de parcours", "passage": passage,
            "icag_kind": icag, "urgent": "Urgente" if number == "1" else "",
            "late": "Ajout tardif" if number == "2" else ""}


def _sample_members() -> list[dict]:
    return [
        {"name": "Dominique Exemple", "structure": "Service social départemental",
         "function": "Responsable de circonscription", "status": "Membre permanent",
         "answer": "Confirmé"},
        {"name": "Alex Modèle", "structure": "France Travail – agence de Saint-Denis",
         "function": "Conseiller·ère accompagnement global", "status": "Invité",
         "answer": "Remplacé par Sam Suppléant"},
    ]


def _sample_agenda() -> dict:
    passage = "Retour (passage du 10/11/2026)"
    return _sample_header() | {
        "video_link": "https://visio.example.invalid/icli-c01",
        "partnership": [{"title": "Présentation du dispositif de mobilité",
                         "duration": "20 min", "time_slot": "14\u00a0h\u00a000",
                         "presenter": "PLIE de Plaine Commune – Chargée de mission"}],
        "situations": [_sample_entry("1", "14\u00a0h\u00a030", "ICL-C01-2026-0001", "Tournesol-17"),
                       _sample_entry("2", "14\u00a0h\u00a050", "ICL-C01-2026-0002", "Glycine-42",
                                     passage=passage)],
        "icag": [_sample_entry("3", "15\u00a0h\u00a010", "ICL-C01-2026-0003", "Mimosa-08",
                               icag="Renouvellement")],
        "followups": [{"reference": "ICL-C01-2026-0000", "session_date": "10/11/2026",
                       "porteur": "ALI de Saint-Denis", "echeance": "15/01/2027",
                       "state": "En cours"}],
        "followups_time": "15\u00a0h\u00a030",
        "followups_presenter": "Chargé·e d'animation territoriale",
        "members": _sample_members(),
    }


def _sample_followups() -> list[dict]:
    """Open préconisations of an earlier session, with their text (dossier, minutes)."""
    return [{"reference": "ICL-C01-2026-0000", "session_date": "10/11/2026",
             "preconisation": "Bilan de compétences", "porteur": "ALI de Saint-Denis",
             "echeance": "15/01/2027", "state": "En cours"}]


def _sample_fiche(number: str, reference: str, pseudonym: str, shared: bool) -> dict:
    return {
        "number": number, "time_slot": "14\u00a0h\u00a030", "part": "Étude de situation",
        "reference": reference, "pseudonym": pseudonym, "structure": "ALI de Saint-Denis",
        "structure_type": "Agence Locale d'Insertion",
        "motif": "Demande de réorientation de parcours",
        "secondary_motifs": "Situation complexe / cumul de freins", "urgent": "Non",
        "fields": [{"label": "Situation familiale", "value": "Personne isolée"},
                   {"label": "Ancienneté au RSA", "value": "Plus de 5 ans"}],
        "parcours": "Parcours social depuis deux ans.\nDémarches de soins engagées.",
        "actions": [{"action": "Atelier de recherche d'emploi", "structure": "ALI",
                     "start": "02/03/2026", "end": "", "result": "En cours"}],
        "freins": [{"label": "Mobilité (permis, transport, périmètre)",
                    "intensity": "Important"}],
        "sensitive_shared": shared,
        "sensitive": ([{"label": "Santé / handicap\u00a0: précisions utiles au parcours",
                        "value": "Problématique de santé impactant le parcours, suivi en cours"}]
                      if shared else []),
        "question": "Une réorientation vers l'ALI est-elle pertinente\u00a0?",
        "proposition": "Réorientation vers l'ALI.",
        "person_informed": "Oui, le 01/10/2026", "person_position": "D'accord",
        "person_comment": "Souhaite une formation.",
        "passages": [{"date": "10/11/2026", "reference": reference,
                      "motif": "Demande de réorientation de parcours",
                      "avis": "Ajournée"}],
    }


def _sample_outcome(reference: str, adjourned: bool, icag: str = "") -> dict:
    return {
        "reference": reference, "time_slot": "14\u00a0h\u00a030", "icag_kind": icag,
        "motif": "Demande de réorientation de parcours", "structure": "ALI de Saint-Denis",
        "structure_type": "Agence Locale d'Insertion",
        "outcome": "Ajournée" if adjourned else "Avis rendu", "adjourned": adjourned,
        "decided": not adjourned,
        "adjourn_reason": "Complément d'information demandé." if adjourned else "",
        "avis": "" if adjourned else "Maintien du parcours et du référent, avec préconisations",
        "motivation": "" if adjourned else "Le parcours progresse\u00a0; appui sur la mobilité.",
        "actions": [] if adjourned else [{"label": "Aide au permis de conduire",
                                          "porteur": "ALI de Saint-Denis",
                                          "echeance": "15/03/2027"}],
        "come_back_on": "" if adjourned else "01/04/2027",
        "formal_decision": "" if adjourned else "Oui, par le Département",
    }


def sample_context(kind: str) -> dict:
    """A representative context with every key of ``kind`` and every loop filled: used to
    test-render a template an administrator uploads. Fictitious values only."""
    if kind == "agenda":
        return _sample_agenda()
    if kind == "dossier":
        agenda = _sample_agenda()
        return agenda | {
            "copies": [{"number": str(n)} | m for n, m in enumerate(agenda["members"], 1)],
            "sheets": [_sample_fiche("1", "ICL-C01-2026-0001", "Tournesol-17", True),
                       _sample_fiche("2", "ICL-C01-2026-0002", "Glycine-42", False)],
            "open_recommendations": _sample_followups(),
        }
    if kind == "attendance":
        marks = [{"present": "X", "excused": "", "absent": ""},
                 {"present": "", "excused": "Remplacé·e", "absent": ""}]
        return _sample_header() | {
            "members": [member | mark for member, mark in zip(_sample_members(), marks,
                                                               strict=True)],
            "presenters": [{"structure": "ALI de Saint-Denis",
                            "label": "Référent·e présentant les situations n° 1 et 3",
                            "time_slots": "14\u00a0h\u00a030, 15\u00a0h\u00a010"}],
        }
    if kind == "minutes":
        return _sample_header() | {
            "attendance": [{"structure": "Service social départemental", "present": "1",
                            "excuse": "0", "absent": "0", "remplace": "1",
                            "members": [{"name": "Dominique Exemple",
                                         "function": "Responsable de circonscription",
                                         "status": "Membre permanent",
                                         "attendance": "Présent·e"}]}],
            "attendance_totals": {"present": "1", "excuse": "0", "absent": "0",
                                  "remplace": "1"},
            "motif_counts": [{"motif": "Demande de réorientation de parcours",
                              "examined": "1", "adjourned": "1"}],
            "situations_examined": "1", "situations_adjourned": "1",
            "partnership": [{"title": "Présentation du dispositif de mobilité",
                             "duration": "20 min", "time_slot": "14\u00a0h\u00a000",
                             "presenter": "PLIE de Plaine Commune – Chargée de mission",
                             "summary": "Aide au permis et location solidaire de véhicules.",
                             "next_step": "Diffuser la plaquette aux référent·e·s.",
                             "follow_up_on": "12/01/2027"}],
            "situations": [_sample_outcome("ICL-C01-2026-0001", False),
                           _sample_outcome("ICL-C01-2026-0002", True)],
            "icag": [_sample_outcome("ICL-C01-2026-0003", False, icag="Renouvellement")],
            "icag_steps": [{"reference": "ICL-C01-2026-0003", "kind": "Renouvellement",
                            "date": "15/12/2026", "term": "31/01/2028", "diagnostic": "",
                            "exit_reason": ""}],
            "followups": _sample_followups(),
            "secretary": "Dominique Exemple (Responsable de circonscription, Service social "
                         "départemental)",
            "done_at": "Saint-Denis", "done_on": "dimanche 20 décembre 2026",
            "approved": {"number": "2", "filename": "proces-verbal-2026-12-15-v2.docx",
                         "sha256": "0" * 64},
            "visas": [{"institution_label": SIGNATORIES[0][1], "name": "Claude Directeur",
                       "date": "20/12/2026 à 10\u00a0h\u00a005", "sha256": "0" * 64},
                      {"institution_label": SIGNATORIES[1][1], "name": "", "date": "",
                       "sha256": ""}],
        }
    if kind == "feedback":
        outcome = _sample_outcome("ICL-C01-2026-0001", False)
        return {
            "circonscription": "Saint-Denis", "meeting_date": "mardi 15 décembre 2026",
            "version": "1", "generated_on": "mercredi 16 décembre 2026",
            "reference": "ICL-C01-2026-0001", "pseudonym": "Tournesol-17",
            "structure": outcome["structure"], "motif": outcome["motif"],
            "avis": outcome["avis"], "adjourned": False, "motivation": outcome["motivation"],
            "actions": outcome["actions"],
            "next_passage": "à partir du 01/04/2027, séance à fixer",
            "formal_decision": outcome["formal_decision"],
            "information": ["Informer la personne de l'avis rendu par l'instance.",
                            "Convenir avec elle de la mise en œuvre des préconisations."],
            "contact": "Camille Exemple, chargé·e d'animation territoriale de l'ICL-I, "
                       "circonscription de Saint-Denis – cat.saint-denis@example.invalid",
        }
    if kind == "information":
        return {"reference": "ICL-C01-2026-0001", "structure": "ALI de Saint-Denis",
                "circonscription": "Saint-Denis",
                "motif": "Demande de réorientation de parcours", "retention": RETENTION,
                "dpo_contact": "dpo@example.invalid", "version": "1",
                "generated_on": "mardi 1er décembre 2026"}
    raise KeyError(kind)
