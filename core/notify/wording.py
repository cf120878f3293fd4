"""What leads write (broadcasts, templates, code-word replies) rendered in a sandbox whose cost is
bounded by the text itself: no loops, macros, includes or assignments, no globals such as
``range``, only a few harmless filters, members exposed as plain data (their keys, no methods),
repetition (``*``, ``**``) capped, and the result at most Telegram's 4,096 characters. A render
then takes time in proportion to the template's at most 4,000 characters, so it can run on the
event loop without ever stalling it.
"""

from __future__ import annotations

import operator
from functools import lru_cache
from typing import Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    UndefinedError,
    nodes,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_MESSAGE_CHARS = 4096  # Telegram's limit for one message
MAX_REPEAT_CHARS = MAX_MESSAGE_CHARS
MAX_EXPONENT = 64
VARIABLES = "member.name, member.first_name"
FILTERS = ("upper", "lower", "title", "capitalize", "trim", "default", "d", "e", "escape")
_REFUSED: dict[type[nodes.Node], str] = {
    nodes.For: "loops ({% for %})",
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from … import %}",
    nodes.Extends: "{% extends %}",
    nodes.Block: "{% block %}",
    nodes.Assign: "{% set %}",
    nodes.AssignBlock: "{% set %}",
    nodes.FilterBlock: "{% filter %}",
    nodes.With: "{% with %}",
    nodes.Call: "calling functions or methods",
}


class WordingError(ValueError):
    """What is wrong with a lead's text, in words a lead understands."""


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        # Members are plain dicts: `member.name` is a key. No attribute of anything is reachable
        # (Jinja's sandbox lets `str.format_map` through, which prints a memory address).
        if isinstance(obj, dict):
            if attribute in obj:
                return obj[attribute]
            if not hasattr(obj, attribute):
                return self.undefined(obj=obj, name=attribute)
        return self.unsafe_undefined(obj, attribute)

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        if op == "**":
            if isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"an exponent above {MAX_EXPONENT}")
            return operator.pow(left, right)
        sizes = [len(v) for v in (left, right) if isinstance(v, str | list | tuple)]
        counts = [v for v in (left, right) if isinstance(v, int) and not isinstance(v, bool)]
        if sizes and counts and sizes[0] * max(counts[0], 0) > MAX_REPEAT_CHARS:
            raise SecurityError(f"repeating text past {MAX_REPEAT_CHARS} characters")
        return operator.mul(left, right)


_environment = _Environment(undefined=StrictUndefined, autoescape=False)
_environment.globals.clear()
_environment.filters = {name: _environment.filters[name] for name in FILTERS}


@lru_cache(maxsize=256)
def compile_wording(text: str) -> Template:
    """Compile a lead's text, refusing what could make rendering it expensive."""
    try:
        tree = _environment.parse(text)
    except TemplateSyntaxError as exc:
        raise WordingError(f"template syntax error on line {exc.lineno}: {exc.message}") from None
    for node in tree.find_all(tuple(_REFUSED)):
        raise WordingError(
            f"{_REFUSED[type(node)]} cannot be used in a message; use {{{{ member.first_name }}}}, "
            "{{ member.name }} and {% if %}"
        )
    try:
        return _environment.from_string(tree)
    except TemplateSyntaxError as exc:  # an unknown filter or test
        raise WordingError(f"{exc.message}; filters: {', '.join(FILTERS)}") from None


def render_wording(text: str, variables: dict[str, Any]) -> str:
    """Render a lead's text; WordingError says what is wrong, never another exception."""
    try:
        rendered = compile_wording(text).render(variables)
    except WordingError:
        raise
    except UndefinedError as exc:
        raise WordingError(f"{exc.message}; available: {VARIABLES}") from None
    except SecurityError as exc:
        raise WordingError(f"not allowed in a message: {exc}") from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, RecursionError) as exc:
        raise WordingError(f"the text cannot be rendered: {exc}") from None
    if len(rendered) > MAX_MESSAGE_CHARS:
        raise WordingError(f"the message would be longer than {MAX_MESSAGE_CHARS} characters")
    return rendered
