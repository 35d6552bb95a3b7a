"""What the worker runs once before RQ forks, so that no work horse pays for a first run.

A horse is a fork of the worker: what the worker has run, the horse runs at full speed
(CPython's specialised bytecode, SQLAlchemy's loaders and compiled queries, the fonts
LibreOffice loaded); what the worker never ran, every horse runs cold, again and again. So the
worker builds the agenda and the dossier of a synthetic session of ``SITUATIONS`` situations
through the very builders the jobs use, renders every template, converts one PDF, then
freezes the collector's view of all that (``gc.freeze``: the horses share those pages
instead of copying them).

The synthetic session lives in a throwaway in-memory SQLite database under a throwaway
keyring (``KeyRing.ephemeral``): the real database and keys are not touched, no personal data
is read, and nothing of it outlives the warm-up.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from datetime import date, datetime, time, timedelta

from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from generator import runtime
from generator.contexts import BUILDERS, sample_context
from generator.pdf import PdfError
from generator.render import TEMPLATES, RenderError, render, template_path
from shared import audit
from shared.crypto import KeyRing
from shared.db import Base
from shared.demo import demo_values
from shared.domain.beneficiaries import Identity
from shared.domain.meetings import create_meeting, inscribe_sheet
from shared.domain.reference import ensure_reference_defaults
from shared.domain.sheets import start_sheet, write_values
from shared.encrypted import Vault
from shared.models import Circonscription, Meeting, Structure

log = logging.getLogger(__name__)

SITUATIONS = 30  # a session of a real size: loops long enough to specialise
RUNS = 3  # CPython specialises a code path after a few runs of it
BUILT_KINDS = ("agenda", "dossier")  # the documents whose size grows with the session


def warm_up(rt: runtime.Runtime) -> None:
    """Build, render and convert once (see the module docstring); never stops the worker:
    a failure here only means colder horses."""
    contexts = {}
    try:
        contexts = synthetic_contexts()
    except Exception as exc:
        log.warning("warm-up of the context builders failed (%s)", type(exc).__name__)
    docx = None
    for kind, name in TEMPLATES.items():
        path = template_path(rt.settings.templates_dir, kind)
        if not path.is_file():
            continue
        try:
            for _ in range(RUNS if kind in contexts else 1):
                docx = render(path, contexts.get(kind) or sample_context(kind), name)
        except RenderError as exc:  # the job will say it; starting is not the place
            log.warning("warm-up: %s", exc)
    if docx is not None and rt.pdf is not None and rt.pdf.available:
        with contextlib.suppress(PdfError):
            rt.pdf.convert(docx)
    gc.collect()
    gc.freeze()


def synthetic_contexts(situations: int = SITUATIONS) -> dict[str, dict]:
    """The agenda's and the dossier's contexts of a synthetic session, each built ``RUNS``
    times by the jobs' builders, in a throwaway database."""
    engine = create_engine("sqlite://", poolclass=StaticPool)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            vault = Vault(session, KeyRing.ephemeral(), audit.WORKER)
            meeting = _synthetic_session(session, vault, situations)
            contexts = {}
            for kind in BUILT_KINDS:
                builder, _keys = BUILDERS[kind]
                for _ in range(RUNS):
                    contexts[kind] = builder(session, vault, meeting, 1, date.today(), None)
            return contexts
    finally:
        engine.dispose()


def _synthetic_session(session: Session, vault: Vault, situations: int) -> Meeting:
    ensure_reference_defaults(session)
    circonscription = Circonscription(code="W00", name="Séance fictive")
    structure = Structure(name="Structure fictive", type="ali",
                          circonscription=circonscription)
    session.add_all([circonscription, structure])
    session.flush()
    day = date.today() + timedelta(days=30)
    meeting = create_meeting(session, circonscription, datetime.combine(day, time(14)),
                             "Salle fictive")
    for number in range(situations):
        identity = Identity(nom=f"Fictif{number}", prenom="Échauffement",
                            date_naissance="1980-01-01")
        sheet = start_sheet(session, vault, structure=structure, author_id=None,
                            identity=identity).sheet
        write_values(vault, sheet, demo_values(number))
        sheet.status = "recevable"  # screened: synthetic, no workflow to replay
        slot = datetime.combine(day, time(14)) + timedelta(minutes=10 * number)
        inscribe_sheet(session, vault, meeting, sheet, f"{slot:%H:%M}")
    session.flush()
    return meeting
