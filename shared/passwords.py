"""argon2id password hashing (argon2-cffi)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_DEFAULT = PasswordHasher()
# Tests only (Settings.fast_password_hashing): argon2id still, with minimal cost.
_FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)

MIN_LENGTH = 12

_hasher = _DEFAULT


def use_fast_hashing(fast: bool) -> None:
    """Select the test parameters; called once per process from Settings."""
    global _hasher
    _hasher = _FAST if fast else _DEFAULT


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def password_problem(password: str) -> str | None:
    """A French reason the password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"Le mot de passe doit contenir au moins {MIN_LENGTH} caractères."
    if len(set(password)) < 5:
        return "Le mot de passe est trop simple."
    return None
