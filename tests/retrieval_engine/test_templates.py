"""Templates: only ``{{INPUT.x}}``, sandboxed, strict about missing inputs."""

from __future__ import annotations

import pytest

from libs.errors import InvalidInputError
from services.retrieval.engine.templates import compile_template, render


def test_renders_text_and_whole_values() -> None:
    template = compile_template("about {{ INPUT.query }} in {{INPUT['year']}}")
    assert template.inputs == {"query", "year"}
    assert render(template, {"query": "aspirin", "year": 2020}) == "about aspirin in 2020"
    whole = compile_template("{{INPUT.vector}}")
    assert render(whole, {"vector": [0.5, 1.0]}) == [0.5, 1.0]


def test_missing_input_is_named() -> None:
    with pytest.raises(InvalidInputError, match=r"missing input\(s\) \['query'\]"):
        render(compile_template("{{INPUT.query}}!"), {"other": "x"})


def test_an_input_named_like_a_dict_method_is_the_input() -> None:
    assert render(compile_template("[{{INPUT.items}}]"), {"items": "x"}) == "[x]"


@pytest.mark.parametrize(
    "source",
    [
        "{{ INPUT.query | upper }}",
        "{{ query }}",
        "{{ INPUT.query.__class__ }}",
        "{{ INPUT.__class__ }}",
        "{{ INPUT.query() }}",
        "{% for x in INPUT %}{{x}}{% endfor %}",
        "{{ INPUT.query",
        "{{ INPUT[0] }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_anything_else_is_refused(source: str) -> None:
    with pytest.raises(ValueError):
        compile_template(source)
