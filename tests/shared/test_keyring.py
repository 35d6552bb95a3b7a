"""The keyring file: created private, never overwritten, refused when unsafe or malformed,
loaded per process with only the chains that process may hold."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

import pytest

from shared.crypto import (
    ALL_CHAINS,
    KEY_BYTES,
    CryptoError,
    KeyNotFoundError,
    KeyRing,
    KeyringError,
    new_dek,
)
from tests.helpers import assert_no_key_material, file_keys

ROOT = Path(__file__).resolve().parents[2]
WORKER_CHAINS = ("content", "audit", "jobs")


@pytest.fixture
def keyring_file(tmp_path) -> Path:
    path = tmp_path / "keyring.json"
    assert KeyRing.create_file(path) is True
    return path


def rewrite(path: Path, body: str) -> None:
    path.write_text(body, encoding="utf-8")
    path.chmod(0o600)


# -- creation ----------------------------------------------------------------------------


def test_a_created_keyring_is_readable_by_its_owner_only(keyring_file):
    assert keyring_file.stat().st_mode & 0o777 == 0o600


def test_a_created_keyring_holds_one_fresh_256_bit_key_per_chain(keyring_file, tmp_path):
    data = json.loads(keyring_file.read_text(encoding="utf-8"))
    assert data["format"] == 1
    assert set(data["chains"]) == set(ALL_CHAINS)
    keys = file_keys(keyring_file)
    assert all(len(base64.b64decode(k)) == KEY_BYTES for k in keys)
    assert len(set(keys)) == len(ALL_CHAINS)  # never one key reused for two purposes
    other = tmp_path / "other.json"
    KeyRing.create_file(other)
    assert not set(keys) & set(file_keys(other))


def test_creating_a_keyring_over_an_existing_one_returns_false_and_changes_nothing(
        keyring_file):
    before = keyring_file.read_bytes()
    assert KeyRing.create_file(keyring_file) is False
    assert keyring_file.read_bytes() == before
    assert keyring_file.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in keyring_file.parent.iterdir()] == [keyring_file.name]  # no temp


def test_a_created_keyring_loads_with_every_chain(keyring_file):
    ring = KeyRing.load(keyring_file)
    assert ring.chains == tuple(sorted(ALL_CHAINS))
    dek = new_dek()
    kek_version, wrapped = ring.wrap("identity", "uuid-1", 1, dek)
    assert ring.unwrap("identity", "uuid-1", 1, kek_version, wrapped) == dek


# -- unsafe files ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o610, 0o666])
def test_a_keyring_others_can_access_is_refused(keyring_file, mode):
    keyring_file.chmod(mode)
    with pytest.raises(KeyringError, match="chmod 600") as info:
        KeyRing.load(keyring_file)
    assert_no_key_material(str(info.value), file_keys(keyring_file))


def test_a_read_only_owner_file_is_accepted(keyring_file):
    keyring_file.chmod(0o400)
    assert KeyRing.load(keyring_file).chains == tuple(sorted(ALL_CHAINS))


def test_a_missing_keyring_file_is_a_keyring_error(tmp_path):
    with pytest.raises(KeyringError, match="not found"):
        KeyRing.load(tmp_path / "absent.json")


# -- per-process chains ------------------------------------------------------------------


def test_a_worker_ring_can_never_wrap_or_unwrap_identity_keys(keyring_file):
    full = KeyRing.load(keyring_file)
    dek = new_dek()
    kek_version, wrapped = full.wrap("identity", "uuid-1", 1, dek)

    worker = KeyRing.load(keyring_file, WORKER_CHAINS)
    assert worker.chains == tuple(sorted(WORKER_CHAINS))
    assert not worker.holds("identity", kek_version)
    with pytest.raises(KeyNotFoundError):
        worker.unwrap("identity", "uuid-1", 1, kek_version, wrapped)
    with pytest.raises(KeyNotFoundError):
        worker.wrap("identity", "uuid-1", 1, dek)
    with pytest.raises(KeyNotFoundError):
        worker.primary_version("identity")
    with pytest.raises(KeyNotFoundError):
        worker.secret("index")  # nor the blind-index secret
    # ...while its own chains work
    _, content = worker.wrap("content", "uuid-1", 1, dek)
    assert full.unwrap("content", "uuid-1", 1, 1, content) == dek
    assert worker.secret("audit") == full.secret("audit")


def test_a_worker_ring_holds_no_identity_key_bytes_at_all(keyring_file):
    worker = KeyRing.load(keyring_file, WORKER_CHAINS)
    data = json.loads(keyring_file.read_text(encoding="utf-8"))
    identity_key = base64.b64decode(data["chains"]["identity"]["versions"]["1"]["key"])
    index_key = base64.b64decode(data["chains"]["index"]["versions"]["1"]["key"])
    held = [v.key for chain in ALL_CHAINS for v in worker.versions(chain)]
    assert len(held) == len(WORKER_CHAINS)
    assert identity_key not in held
    assert index_key not in held


# -- malformed files ---------------------------------------------------------------------


def break_json(data: dict) -> str:
    return json.dumps(data)[:-40]


def drop_identity(data: dict) -> str:
    del data["chains"]["identity"]
    return json.dumps(data)


def short_key(data: dict) -> str:
    data["chains"]["content"]["versions"]["1"]["key"] = base64.b64encode(b"k" * 16).decode()
    return json.dumps(data)


def long_key(data: dict) -> str:
    key = data["chains"]["content"]["versions"]["1"]["key"]
    data["chains"]["content"]["versions"]["1"]["key"] = base64.b64encode(
        base64.b64decode(key) + b"\x00").decode()
    return json.dumps(data)


def key_not_base64(data: dict) -> str:
    data["chains"]["identity"]["versions"]["1"]["key"] += "!"
    return json.dumps(data)


def unknown_format(data: dict) -> str:
    data["format"] = 2
    return json.dumps(data)


def no_format(data: dict) -> str:
    del data["format"]
    return json.dumps(data)


def no_versions(data: dict) -> str:
    del data["chains"]["audit"]["versions"]
    return json.dumps(data)


def no_primary(data: dict) -> str:
    del data["chains"]["audit"]["primary"]
    return json.dumps(data)


def primary_not_a_number(data: dict) -> str:
    data["chains"]["audit"]["primary"] = "one"
    return json.dumps(data)


def key_pasted_as_primary(data: dict) -> str:  # a hand-editing slip
    data["chains"]["audit"]["primary"] = data["chains"]["audit"]["versions"]["1"]["key"]
    return json.dumps(data)


def missing_created_at(data: dict) -> str:
    del data["chains"]["jobs"]["versions"]["1"]["created_at"]
    return json.dumps(data)


MALFORMATIONS = [break_json, drop_identity, short_key, long_key, key_not_base64,
                 unknown_format, no_format, no_versions, no_primary, primary_not_a_number,
                 key_pasted_as_primary, missing_created_at]


@pytest.mark.parametrize("malform", MALFORMATIONS, ids=lambda f: f.__name__)
def test_a_malformed_keyring_is_a_keyring_error_without_key_material(keyring_file, malform):
    keys = file_keys(keyring_file)
    rewrite(keyring_file, malform(json.loads(keyring_file.read_text(encoding="utf-8"))))
    with pytest.raises(KeyringError) as info:
        KeyRing.load(keyring_file)
    message = str(info.value)
    assert str(keyring_file) in message  # names the file to fix...
    assert_no_key_material(message, keys)  # ...never a key
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


@pytest.mark.parametrize("body", [
    "[]", "null", '"keyring"', '{"format": 1, "chains": []}',
    '{"format": 1, "chains": {"identity": {"primary": 1, "versions": []}}}',
], ids=["list", "null", "string", "chains-list", "versions-list"])
def test_a_keyring_of_the_wrong_json_shape_is_a_keyring_error(keyring_file, body):
    # regression: these used to escape as AttributeError (data.get / .items() on a list)
    rewrite(keyring_file, body)
    with pytest.raises(KeyringError, match="keyring"):
        KeyRing.load(keyring_file)


def test_a_keyring_that_is_not_utf8_is_a_keyring_error(keyring_file):
    keyring_file.write_bytes(b'{"format": 1, "chains": {"\xff": 1}}')
    keyring_file.chmod(0o600)
    with pytest.raises(KeyringError):
        KeyRing.load(keyring_file)


def test_a_missing_chain_is_named_in_the_error(keyring_file):
    rewrite(keyring_file, drop_identity(json.loads(keyring_file.read_text(encoding="utf-8"))))
    with pytest.raises(KeyringError, match="identity"):
        KeyRing.load(keyring_file)
    # a process that does not want the missing chain still loads
    assert KeyRing.load(keyring_file, WORKER_CHAINS).chains == tuple(sorted(WORKER_CHAINS))


def test_a_bad_key_length_is_named_with_its_chain(keyring_file):
    rewrite(keyring_file, short_key(json.loads(keyring_file.read_text(encoding="utf-8"))))
    with pytest.raises(KeyringError, match="bad key length in content"):
        KeyRing.load(keyring_file)


def test_a_primary_version_absent_from_the_file_is_refused(keyring_file):
    data = json.loads(keyring_file.read_text(encoding="utf-8"))
    data["chains"]["content"]["primary"] = 2
    rewrite(keyring_file, json.dumps(data))
    with pytest.raises(CryptoError) as info:
        KeyRing.load(keyring_file)
    assert_no_key_material(str(info.value), file_keys(keyring_file))


def test_older_key_versions_stay_usable_for_unwrapping_after_rotation(keyring_file):
    old = KeyRing.load(keyring_file)
    dek = new_dek()
    old_version, wrapped = old.wrap("identity", "uuid-1", 1, dek)
    data = json.loads(keyring_file.read_text(encoding="utf-8"))
    data["chains"]["identity"]["versions"]["2"] = {
        "key": base64.b64encode(os.urandom(KEY_BYTES)).decode(), "created_at": "2026-06-01"}
    data["chains"]["identity"]["primary"] = 2
    rewrite(keyring_file, json.dumps(data))
    new = KeyRing.load(keyring_file)
    assert new.unwrap("identity", "uuid-1", 1, old_version, wrapped) == dek
    assert new.wrap("identity", "uuid-1", 1, dek)[0] == 2


# -- the development keyring never reaches git -------------------------------------------


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=30)


@pytest.fixture
def git_checkout():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    return ROOT


def test_gitignore_ignores_the_instance_directory(git_checkout):
    lines = (git_checkout / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "instance/" in [line.strip() for line in lines]
    result = git("check-ignore", "-q", "instance/keyring.json")
    assert result.returncode == 0, result.stderr
    result = git("check-ignore", "-q", "instance/secret_key")
    assert result.returncode == 0, result.stderr


def test_no_tracked_file_is_a_keyring_or_lives_in_the_instance_directory(git_checkout):
    tracked = git("ls-files", "-z").stdout.split("\0")
    assert tracked  # the listing itself worked
    assert not [p for p in tracked if p.startswith("instance/")]
    assert not [p for p in tracked if Path(p).name in ("keyring.json", "secret_key")]
