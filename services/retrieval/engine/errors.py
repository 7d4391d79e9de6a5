"""Error messages of the engine: every user mistake names the stage and the field at fault.

Why one module: the HTTP layer maps ``InvalidInputError`` to 422 and ``NotFoundError`` to 404 and
shows the message as is, so the wording (``stage 'search' (feature_search): searches[0].top_k:
...``) must be the same for every stage and for plan-time and run-time checks alike.
"""

from __future__ import annotations

from pydantic import ValidationError

from libs.errors import InvalidInputError, NotFoundError

__all__ = ["field_path", "stage_invalid", "stage_not_found", "validation_summary"]


def field_path(location: tuple[int | str, ...]) -> str:
    """``('searches', 0, 'top_k')`` as ``searches[0].top_k``: how users write it in JSON paths."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text or "parameters"


def validation_summary(error: ValidationError, tags: frozenset[str] = frozenset()) -> str:
    """One line for all problems of a parameter block, each prefixed with its field path.

    pydantic puts the chosen member of a union into locations (``int``, or the discriminator
    value such as ``regex`` for a tagged union): ``tags`` names those to leave out, so paths
    read as the user's JSON. A problem reported again on a containing field (a tuple "too short"
    because its only item failed) is left out too.
    """
    located = [
        (tuple(p for p in problem["loc"] if not _is_union_tag(p, tags)), problem["msg"])
        for problem in error.errors()
    ]
    problems = []
    for location, message in located:
        if any(
            len(other) > len(location) and other[: len(location)] == location
            for other, _ in located
        ):
            continue
        problems.append(f"{field_path(location)}: {message}")
    return "; ".join(dict.fromkeys(problems))


def _is_union_tag(part: int | str, tags: frozenset[str]) -> bool:
    return isinstance(part, str) and (
        part in tags
        or part in {"int", "float", "str", "bool", "list[float]", "tuple[float, ...]"}
        or part.startswith(("function-", "tagged-union", "tuple[", "list["))
    )


def stage_invalid(stage_name: str, stage_id: str, field: str, message: str) -> InvalidInputError:
    """A parameter of one stage can never work as given (HTTP 422)."""
    return InvalidInputError(f"stage {stage_name!r} ({stage_id}): {field}: {message}")


def stage_not_found(stage_name: str, stage_id: str, known: list[str]) -> NotFoundError:
    """The stage names a stage id the registry does not have (HTTP 404), listing those it has."""
    return NotFoundError(
        f"stage {stage_name!r}: config.stage_id: unknown stage id {stage_id!r}; "
        f"available: {', '.join(sorted(known))}"
    )
