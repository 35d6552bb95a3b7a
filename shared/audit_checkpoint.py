"""Signed checkpoints of the audit chain's head, kept outside the database.

A checkpoint is (seq, MAC of that row, time) MACed under the audit secret, written to a file
the operator chooses (``ICLI_AUDIT_CHECKPOINT_FILE``, ideally on another machine or a
write-once mount): by the worker's maintenance step, by ``icli audit checkpoint`` and with the
DPO's audit export. Someone who can write the database but not that file cannot delete rows
back to an older head unnoticed: ``icli audit verify`` compares the chain with the last
checkpoint (the row it names must still be there, with the same MAC).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.crypto import KeyRing, mac, mac_matches
from shared.db import utcnow
from shared.files import write_private
from shared.models import AuditEvent, AuditHead

FORMAT = 1


class CheckpointError(Exception):
    """A checkpoint file is unreadable, or was not signed with this instance's audit key."""


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    mac: str
    at: str  # ISO time (UTC) the checkpoint was taken
    sig: str


def _parts(seq: int, row_mac: str, at: str) -> tuple:
    return ("icli.audit.checkpoint.v1", seq, row_mac, at)


def take(session: Session, keyring: KeyRing) -> Checkpoint:
    """The current head, signed."""
    head = session.get(AuditHead, 1)
    seq, row_mac = (head.seq, head.mac) if head is not None else (0, "")
    at = utcnow().isoformat(timespec="seconds") + "Z"
    return Checkpoint(seq, row_mac, at, mac(keyring.secret("audit"), *_parts(seq, row_mac, at)))


def to_json(checkpoint: Checkpoint) -> str:
    return json.dumps({"format": FORMAT, **asdict(checkpoint)}, indent=2) + "\n"


def write(path: Path, checkpoint: Checkpoint) -> None:
    """Replace ``path`` with ``checkpoint`` atomically (a reader never sees half of one)."""
    write_private(path, to_json(checkpoint), exclusive=False)


def read(path: Path, keyring: KeyRing) -> Checkpoint:
    """The checkpoint in ``path``, its signature verified."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError("format")
        checkpoint = Checkpoint(int(data["seq"]), str(data["mac"]), str(data["at"]),
                                str(data["sig"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__})") from None
    if not mac_matches(keyring.secret("audit"), checkpoint.sig,
                       *_parts(checkpoint.seq, checkpoint.mac, checkpoint.at)):
        raise CheckpointError(f"checkpoint {path} is forged or of another instance")
    return checkpoint


def compare(session: Session, checkpoint: Checkpoint) -> str:
    """Why the chain no longer contains what ``checkpoint`` saw; "" when it does."""
    head = session.get(AuditHead, 1)
    head_seq = head.seq if head is not None else 0
    if head_seq < checkpoint.seq:
        return (f"truncated: the chain ends at seq {head_seq}, the checkpoint of "
                f"{checkpoint.at} saw seq {checkpoint.seq}")
    if checkpoint.seq == 0:
        return ""
    if head is not None and head.anchor_seq >= checkpoint.seq:  # purged by the retention
        if head.anchor_seq == checkpoint.seq and head.anchor_mac != checkpoint.mac:
            return f"rewritten: seq {checkpoint.seq} differs from the checkpoint"
        return ""
    row_mac = session.scalar(select(AuditEvent.mac).where(AuditEvent.seq == checkpoint.seq))
    if row_mac is None:
        return f"truncated: seq {checkpoint.seq}, seen by the checkpoint, is missing"
    if row_mac != checkpoint.mac:
        return (f"rewritten: seq {checkpoint.seq} differs from the checkpoint of "
                f"{checkpoint.at} (rows deleted back to it, then written again)")
    return ""
