"""Domain errors carry a French message that can be shown to the user as is."""

from __future__ import annotations


class DomainError(Exception):
    """Base of errors the user can understand; ``message`` is French and has no personal data."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFoundError(DomainError):
    pass


class ForbiddenError(DomainError):
    pass


class InvalidInputError(DomainError):
    pass


class InvalidTransitionError(DomainError):
    pass
