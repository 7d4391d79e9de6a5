"""``{{INPUT.x}}`` templates in stage parameters, rendered in a sandbox.

Why so narrow: retriever definitions come from users and are rendered on every request. The
sandboxed environment (``ImmutableSandboxedEnvironment``) already refuses unsafe attribute
access, and on top of that a template may contain only literal text and ``{{ INPUT.x }}`` /
``{{ INPUT['x'] }}`` expressions: no filters, calls, loops or other names. So nothing in a
template can reach a Python object, and the inputs a template needs are known at plan time
(checked against the retriever's ``input_schema``). ``StrictUndefined`` turns an input missing
at run time into an error naming it instead of an empty string.

A template that is exactly one expression (``"{{INPUT.vector}}"``) renders to the input's own
JSON value (a list stays a list), which is how vectors and ids reach stages unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import JsonValue

from libs.errors import InvalidInputError

__all__ = ["Template", "compile_template", "is_template", "render"]

INPUT = "INPUT"


class _Inputs:
    """What ``INPUT`` is inside a template: items only, no public attributes, so ``INPUT.items``
    is the input named ``items`` and never a method of a mapping."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, JsonValue]) -> None:
        self._values = values

    def __getitem__(self, name: str) -> JsonValue:
        return self._values[name]


class _InputsOnlyEnvironment(ImmutableSandboxedEnvironment):
    """No attribute of any Python object is safe: ``INPUT.x`` falls back to the item ``x``."""

    def is_safe_attribute(self, obj: object, attr: str, value: object) -> bool:
        return False


_ENV = _InputsOnlyEnvironment(undefined=StrictUndefined, autoescape=False)


@dataclass(frozen=True, slots=True)
class Template:
    """A checked template: its source, the inputs it reads, and the single input it *is* (if
    the whole template is one ``{{INPUT.x}}``)."""

    source: str
    inputs: frozenset[str]
    whole: str | None


def is_template(value: str) -> bool:
    """Whether a parameter string is a template at all (plain strings are used as they are)."""
    return "{{" in value or "{%" in value or "{#" in value


@functools.lru_cache(maxsize=1024)
def compile_template(source: str) -> Template:
    """Parse and check a template; ``ValueError`` says what is not allowed (the caller adds the
    stage and field to the message)."""
    try:
        tree = _ENV.parse(source)
    except TemplateSyntaxError as error:
        raise ValueError(f"template syntax error: {error.message}") from None
    inputs: set[str] = set()
    wholes: list[str] = []
    for statement in tree.body:
        if not isinstance(statement, nodes.Output):
            raise ValueError("templates may only contain text and {{INPUT.<name>}} expressions")
        for part in statement.nodes:
            if isinstance(part, nodes.TemplateData):
                continue
            name = _input_name(part)
            inputs.add(name)
            wholes.append(name)
    only = tree.body[0].nodes if len(tree.body) == 1 else []  # type: ignore[attr-defined]
    whole = wholes[0] if len(only) == 1 and len(wholes) == 1 else None
    return Template(source=source, inputs=frozenset(inputs), whole=whole)


def _input_name(expression: nodes.Node) -> str:
    name: str | None = None
    if isinstance(expression, nodes.Getattr) and _is_input(expression.node):
        name = expression.attr
    elif (
        isinstance(expression, nodes.Getitem)
        and _is_input(expression.node)
        and isinstance(expression.arg, nodes.Const)
        and isinstance(expression.arg.value, str)
    ):
        name = expression.arg.value
    if name is not None and name and not name.startswith("_"):
        return name
    raise ValueError(
        "only {{INPUT.<name>}} expressions are allowed in templates (no filters, calls, "
        "other variables or nested attributes)"
    )


def _is_input(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Name) and node.name == INPUT and node.ctx == "load"


def render(template: Template, inputs: Mapping[str, JsonValue]) -> JsonValue:
    """The template with inputs filled in: the raw value for a whole-template input, otherwise
    a string. An input the request lacks is an ``InvalidInputError`` naming it."""
    missing = sorted(name for name in template.inputs if name not in inputs)
    if missing:
        raise InvalidInputError(f"missing input(s) {missing} used by template {template.source!r}")
    if template.whole is not None:
        return inputs[template.whole]
    try:
        return _ENV.from_string(template.source).render({INPUT: _Inputs(inputs)})
    except (UndefinedError, SecurityError) as error:
        raise InvalidInputError(f"template {template.source!r}: {error}") from None
