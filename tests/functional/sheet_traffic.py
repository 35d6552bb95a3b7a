"""Normal traffic in a process of its own: read identities and sheets, edit sheets, beat.

    python -m tests.functional.sheet_traffic STOP_FILE REPORT_FILE SHEET_ID...

Runs until STOP_FILE exists, like an intake process: it follows the keyring file through its
heartbeat, reads (audited) and edits. Each committed edit is appended to REPORT_FILE.edits
("sheet id, edit number"); at the end REPORT_FILE gets counts only (never a value).
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

from shared.config import load_settings
from shared.crypto import CryptoError
from shared.db import make_engine, make_session_factory
from shared.domain import audit
from shared.domain.sheets import read_values, write_values
from shared.encrypted import Vault
from shared.heartbeat import Heartbeat
from shared.keys import load_keyring
from shared.models import IdentityRecord, Sheet


def main(stop: Path, report: Path, sheet_ids: list[int]) -> None:
    settings = load_settings()
    sessions = make_session_factory(make_engine(settings))
    keyring = load_keyring(settings, sessions)
    beat = Heartbeat("intake", keyring, sessions, interval=0.2)
    chooser = random.Random(7)
    counts = {"reads": 0, "edits": 0, "failures": 0}
    with (report.with_suffix(".edits")).open("a", encoding="utf-8") as edits:
        while not stop.exists():
            beat.beat()
            sheet_id = chooser.choice(sheet_ids)
            try:
                with sessions() as session:
                    vault = Vault(session, keyring, audit.CLI)
                    sheet = session.get(Sheet, sheet_id)
                    values = read_values(vault, sheet, purpose="trafic de test")
                    record = session.query(IdentityRecord).filter_by(
                        beneficiary_id=sheet.beneficiary_id).one()
                    vault.open(record, "nom", purpose="trafic de test")
                    counts["reads"] += 1
                    if counts["reads"] % 2:
                        number = counts["edits"] + 1
                        write_values(vault, sheet, {**values, "parcours": f"édition {number}"})
                        session.commit()
                        counts["edits"] = number
                        edits.write(f"{sheet_id},{number}\n")
                        edits.flush()
                    else:
                        session.commit()
            except CryptoError:
                counts["failures"] += 1
            time.sleep(0.005)
    report.write_text(json.dumps(counts), encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), [int(a) for a in sys.argv[3:]])
