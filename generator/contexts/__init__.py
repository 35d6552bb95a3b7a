"""Database rows -> plain, formatted, pseudonymised dicts, one builder per document kind.

Each builder copies an explicit allowlist of fields: a template never sees a model, and
nothing of the identity chain can reach it (this process does not even hold that chain).
Every builder has the same signature::

    builder(session, vault, meeting, version, today, sheet=None) -> dict

(``sheet`` only for the per-situation fiche retour and the information note), and
``BUILDERS[kind] = (builder, KEYS)`` where KEYS is the exact set of top-level variables of
the kind's template (``shared.document_variables``, which the web process reads too). Values
are strings (already formatted: French dates, "14 h 30", JJ/MM/AAAA), lists of such dicts,
and a few booleans that only steer the template's conditions.

The package, by section: ``formatting`` (French dates and times, cleaning), ``common``
(the session header, numbering, members, passages, decisions), one module per document kind
(``agenda``, ``dossier``, ``attendance``, ``minutes``, ``feedback``, ``information``) and
``samples`` (fictitious contexts for the test render of uploaded templates and the worker's
warm-up).
"""

from __future__ import annotations

from collections.abc import Callable

from generator.contexts.agenda import agenda_context
from generator.contexts.attendance import attendance_context
from generator.contexts.dossier import (
    SENSITIVE_DETAIL_FIELDS,
    SENSITIVE_PURPOSE,
    SHEET_COLUMNS,
    SITUATION_FIELDS,
    dossier_context,
)
from generator.contexts.feedback import feedback_context
from generator.contexts.formatting import clean, french_date, french_time, short_date, slot_time
from generator.contexts.information import RETENTION, information_context
from generator.contexts.minutes import SIGNATORIES, minutes_context, minutes_visas
from generator.contexts.samples import sample_context
from shared.document_variables import (
    AGENDA_KEYS,
    ATTENDANCE_KEYS,
    BASE_KEYS,
    DOSSIER_KEYS,
    FEEDBACK_KEYS,
    INFORMATION_KEYS,
    MINUTES_KEYS,
    SESSION_KEYS,
    VARIABLES,
)

Builder = Callable[..., dict]

BUILDERS: dict[str, tuple[Builder, frozenset[str]]] = {
    "agenda": (agenda_context, AGENDA_KEYS),
    "dossier": (dossier_context, DOSSIER_KEYS),
    "attendance": (attendance_context, ATTENDANCE_KEYS),
    "minutes": (minutes_context, MINUTES_KEYS),
    "feedback": (feedback_context, FEEDBACK_KEYS),
    "information": (information_context, INFORMATION_KEYS),
}
if {kind: keys for kind, (_builder, keys) in BUILDERS.items()} != VARIABLES:
    raise RuntimeError("BUILDERS must use the variables of shared.document_variables")

__all__ = [
    "AGENDA_KEYS",
    "ATTENDANCE_KEYS",
    "BASE_KEYS",
    "BUILDERS",
    "DOSSIER_KEYS",
    "FEEDBACK_KEYS",
    "INFORMATION_KEYS",
    "MINUTES_KEYS",
    "RETENTION",
    "SENSITIVE_DETAIL_FIELDS",
    "SENSITIVE_PURPOSE",
    "SESSION_KEYS",
    "SHEET_COLUMNS",
    "SIGNATORIES",
    "SITUATION_FIELDS",
    "Builder",
    "agenda_context",
    "attendance_context",
    "clean",
    "dossier_context",
    "feedback_context",
    "french_date",
    "french_time",
    "information_context",
    "minutes_context",
    "minutes_visas",
    "sample_context",
    "short_date",
    "slot_time",
]
