"""One error hierarchy for every backend: adapters translate driver errors into these.

User mistakes (``InvalidInputError``, ``NotFoundError``, ``ConflictError``) map to HTTP 4xx and
to one-line CLI errors; ``InfrastructureError`` means a backend failed and the caller may retry.
"""

from __future__ import annotations


class OffshootError(Exception):
    """Root of every error Offshoot raises on purpose."""


class InvalidInputError(OffshootError):
    """The caller sent something that can never succeed as sent (HTTP 422)."""


class NotFoundError(OffshootError):
    """The thing named does not exist, or the caller may not know it exists (HTTP 404)."""


class ConflictError(OffshootError):
    """The request is valid but clashes with the current state (HTTP 409)."""


class InfrastructureError(OffshootError):
    """A backend (database, broker) failed; the operation had no effect and may be retried."""


class ConcurrencyError(ConflictError):
    """An append expected a stream version that is no longer the stream's version."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, but the append expected {expected}"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class StreamNotFoundError(NotFoundError):
    """A stream was named that has never been written to nor forked."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"stream {stream_id!r} does not exist")
        self.stream_id = stream_id


class StreamExistsError(ConflictError):
    """A fork was asked to create a stream id that is already taken."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"stream {stream_id!r} already exists")
        self.stream_id = stream_id


class PositionOutOfRangeError(InvalidInputError):
    """A global position beyond the store's head (or below 0) was asked for."""

    def __init__(self, position: int, head: int) -> None:
        super().__init__(f"position {position} is outside the event store (head is {head})")
        self.position = position
        self.head = head


class DuplicateEventError(ConflictError):
    """Some, but not all, event ids of an append are already stored (or stored elsewhere)."""
