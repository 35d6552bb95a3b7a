"""What each document kind's Word template may use, as plain data both sides read.

The generator's context builders (``generator.contexts``) return exactly these top-level
variables; the template check (``generator.template_check``) refuses an uploaded template
that uses any other; the administrators' page lists them. No docxtpl, no database: the web
process reads this module without loading the document engine.

``templates_docx/README.md`` describes each variable (a test compares the lists).
"""

from __future__ import annotations

# The built-in template of each kind, in the templates directory (``templates_docx/``).
BUILTIN_FILES: dict[str, str] = {
    "agenda": "ordre_du_jour.docx",
    "dossier": "dossier_de_seance.docx",
    "attendance": "feuille_emargement.docx",
    "minutes": "proces_verbal.docx",
    "feedback": "fiche_retour.docx",
    "information": "note_information.docx",
}

BASE_KEYS = frozenset({"circonscription", "meeting_date", "version", "generated_on"})
SESSION_KEYS = BASE_KEYS | {"meeting_time", "place", "facilitators"}
AGENDA_KEYS = SESSION_KEYS | {"video_link", "partnership", "situations", "icag", "followups",
                              "followups_time", "followups_presenter", "members"}
DOSSIER_KEYS = AGENDA_KEYS | {"copies", "sheets", "open_recommendations"}
ATTENDANCE_KEYS = SESSION_KEYS | {"members", "presenters"}
MINUTES_KEYS = SESSION_KEYS | {"attendance", "attendance_totals", "motif_counts",
                               "situations_examined", "situations_adjourned", "partnership",
                               "situations", "icag", "icag_steps", "followups", "secretary",
                               "done_at", "done_on", "approved", "visas"}
INFORMATION_KEYS = frozenset({"reference", "structure", "circonscription", "motif",
                              "retention", "dpo_contact", "version", "generated_on"})
FEEDBACK_KEYS = BASE_KEYS | {"reference", "pseudonym", "structure", "motif", "avis",
                             "adjourned", "motivation", "actions", "next_passage",
                             "formal_decision", "information", "contact"}

# The top-level variables of each kind's template (the context builder's keys).
VARIABLES: dict[str, frozenset[str]] = {
    "agenda": AGENDA_KEYS,
    "dossier": DOSSIER_KEYS,
    "attendance": ATTENDANCE_KEYS,
    "minutes": MINUTES_KEYS,
    "feedback": FEEDBACK_KEYS,
    "information": INFORMATION_KEYS,
}
