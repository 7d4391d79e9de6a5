"""Tasks: the status of any asynchronous job, written by whichever service does the work."""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from contracts.base import Command, Event


class TaskStatus(StrEnum):
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    COMPLETED_WITH_ERRORS = "COMPLETED_WITH_ERRORS"
    FAILED = "FAILED"
    CANCELED = "CANCELED"
    SKIPPED = "SKIPPED"
    UNKNOWN = "UNKNOWN"

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset(
    {
        TaskStatus.COMPLETED,
        TaskStatus.COMPLETED_WITH_ERRORS,
        TaskStatus.FAILED,
        TaskStatus.CANCELED,
        TaskStatus.SKIPPED,
    }
)


class TaskCreated(Event):
    type_name: ClassVar[str] = "task.created"

    task_id: str
    namespace_id: str
    organization_id: str
    kind: str = Field(description="what the task does, e.g. namespace.clone, batch.process")
    resource_id: str | None = None
    total: int | None = None


class TaskProgressed(Event):
    type_name: ClassVar[str] = "task.progressed"

    task_id: str
    status: TaskStatus = TaskStatus.IN_PROGRESS
    done: int = Field(ge=0)
    total: int | None = None


class TaskFinished(Event):
    """The last word on a task: COMPLETED, COMPLETED_WITH_ERRORS, FAILED, CANCELED or SKIPPED."""

    type_name: ClassVar[str] = "task.finished"

    task_id: str
    status: TaskStatus
    result: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None


class CancelTask(Command):
    type_name: ClassVar[str] = "task.cancel"

    task_id: str
