"""A journey step as the builder shows it: in plain words ("wait until the member's morning",
"if no answer in 3 days → step 4"), as form values, and back from a submitted form to the
step's JSON (core.journeys.definition validates it; this only arranges the fields)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

KINDS = (
    "send",
    "wait",
    "wait_for_reply",
    "condition",
    "tags",
    "groups",
    "alert",
    "webhook",
    "goto",
    "end",
)
CHOICES = 4  # button rows in the form (the engine takes up to 6; the API can set more)
UNITS = {"minutes": 1, "hours": 60, "days": 1440}
# Where core or pydantic names a step's field → the form field it is shown beside.
_FORM_FIELDS = {
    "message": "text",
    "minutes": "amount",
    "until_time": "at",
    "preferred_time": "wait_mode",
    "until": "wait_mode",
    "choices": "choice_label_0",
    "timeout_minutes": "timeout_amount",
    "on_timeout": "on_timeout",
    "test": "value",
    "then": "then",
    "else": "else",
    "add": "add",
    "remove": "remove",
    "reason": "reason",
    "url": "url",
    "to": "to",
    "title": "title",
}


@dataclass(frozen=True)
class Names:
    """The workspace's tags, groups and templates by id, to name them in plain words."""

    tags: dict[str, str] = field(default_factory=dict)
    groups: dict[str, str] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)


def _amount(minutes: int, words: dict[str, Any]) -> str:
    if minutes % 1440 == 0:
        return str(words["d_days"].format(n=minutes // 1440))
    if minutes % 60 == 0:
        return str(words["d_hours"].format(n=minutes // 60))
    return str(words["d_minutes"].format(n=minutes))


def _split(minutes: int) -> tuple[str, str]:
    for unit in ("days", "hours"):
        if minutes % UNITS[unit] == 0:
            return str(minutes // UNITS[unit]), unit
    return str(minutes), "minutes"


def step_choices(steps: list[dict[str, Any]], words: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, "3. Title") for each step: the options of every "go to step" select."""
    return [
        (str(s["key"]), f"{i + 1}. {s.get('title') or words['kind_' + s['type']]}")
        for i, s in enumerate(steps)
    ]


def step_name(index: int, steps: list[dict[str, Any]], words: dict[str, Any]) -> str:
    step = steps[index]
    title = step.get("title") or words["kind_" + step["type"]]
    return str(words["d_step"].format(n=index + 1, title=title))


def _to(key: str | None, index: int, steps: list[dict[str, Any]], words: dict[str, Any]) -> str:
    """Where a branch leads, by step number: None is the next step (or the end after the last)."""
    if key is None:
        return str(words["d_next"] if index + 1 < len(steps) else words["d_out"])
    found = next((i for i, s in enumerate(steps) if s["key"] == key), None)
    return key if found is None else step_name(found, steps, words)


def _message(message: dict[str, Any] | None, names: Names, words: dict[str, Any]) -> str:
    if not message:
        return ""
    if message.get("text"):
        text = str(message["text"])
        return str(words["d_quote"].format(text=text if len(text) <= 80 else text[:79] + "…"))
    name = names.templates.get(str(message.get("template_id")), "?")
    return str(words["d_template"].format(name=name))


def _test(test: dict[str, Any], names: Names, words: dict[str, Any]) -> str:
    what, op, value = test.get("field"), test.get("op"), test.get("value")
    if what == "tag":
        label = words["j_test_tag" if op == "has" else "j_test_no_tag"]
        return f"{label} {names.tags.get(str(value), value)}"
    if what == "group":
        label = words["j_test_group" if op == "in" else "j_test_no_group"]
        return f"{label} {names.groups.get(str(value), value)}"
    return f"{what} {op} {'' if value is None else value}".strip()


def describe(
    step: dict[str, Any],
    index: int,
    steps: list[dict[str, Any]],
    names: Names,
    words: dict[str, Any],
) -> str:
    """What the step does, in a sentence a lead reads without knowing the JSON."""
    kind = step["type"]
    if kind == "send":
        return str(words["d_send"].format(what=_message(step.get("message"), names, words)))
    if kind == "wait":
        if step.get("minutes"):
            return str(words["d_wait_minutes"].format(amount=_amount(step["minutes"], words)))
        if step.get("until_time"):
            return str(words["d_wait_time"].format(at=str(step["until_time"])[:5]))
        if step.get("preferred_time"):
            return str(words["d_wait_preferred"])
        return str(
            words["d_wait_until"].format(at=str(step.get("until", ""))[:16].replace("T", " "))
        )
    if kind == "wait_for_reply":
        parts = []
        if step.get("message"):
            parts.append(str(words["d_ask"].format(what=_message(step["message"], names, words))))
        parts += [
            str(
                words["d_choice"].format(label=c["label"], to=_to(c.get("to"), index, steps, words))
            )
            for c in step.get("choices", [])
        ]
        others = [words["j_code_word"]] * bool(step.get("code_words")) + [
            f"{words['j_signal']} {s['name']}" for s in step.get("signals", [])
        ]
        if others:
            parts.append(str(words["d_replies"].format(what=", ".join(others))))
        parts.append(
            str(
                words["d_timeout"].format(
                    amount=_amount(step["timeout_minutes"], words),
                    to=_to(step.get("on_timeout"), index, steps, words),
                )
            )
        )
        return "; ".join(parts)
    if kind == "condition":
        return str(
            words["d_if"].format(
                test=_test(step.get("test", {}), names, words),
                then=_to(step.get("then"), index, steps, words),
                else_=_to(step.get("else"), index, steps, words),
            )
        )
    if kind in ("tags", "groups"):
        table = names.tags if kind == "tags" else names.groups
        changes = [f"+{table.get(str(i), i)}" for i in step.get("add", [])]
        changes += [f"−{table.get(str(i), i)}" for i in step.get("remove", [])]
        return str(words["d_" + kind].format(what=", ".join(changes)))
    if kind == "alert":
        return str(words["d_alert"].format(reason=step.get("reason", "")))
    if kind == "webhook":
        return str(words["d_webhook"].format(url=step.get("url", "")))
    if kind == "goto":
        return str(words["d_goto"].format(to=_to(step.get("to"), index, steps, words)))
    return str(words["d_end"])


def describe_trigger(trigger: dict[str, Any], names: Names, words: dict[str, Any]) -> str:
    kind = str(trigger.get("type"))
    name = ""
    if "group_id" in trigger:
        name = names.groups.get(str(trigger["group_id"]), "?")
    elif "tag_id" in trigger:
        name = names.tags.get(str(trigger["tag_id"]), "?")
    elif kind == "signal":
        name = str(trigger.get("name", ""))
        if trigger.get("op"):
            name += f" {trigger['op']} {trigger['value']:g}"
    phrase = words.get("t_" + kind, kind)
    return str(phrase).format(name=name, days=trigger.get("days", ""))


def form_of(step: dict[str, Any]) -> dict[str, Any]:
    """The step's settings as the values of its edit form."""
    values: dict[str, Any] = {"kind": step["type"], "title": step.get("title", "")}
    message = step.get("message") or {}
    values["text"] = message.get("text", "")
    values["template_id"] = str(message.get("template_id") or "")
    if step["type"] == "wait":
        if step.get("minutes"):
            values["wait_mode"] = "duration"
            values["amount"], values["unit"] = _split(step["minutes"])
        elif step.get("until_time"):
            values["wait_mode"], values["at"] = "time", str(step["until_time"])[:5]
        else:
            values["wait_mode"] = "preferred"
    if step["type"] == "wait_for_reply":
        for i, choice in enumerate(step.get("choices", [])[:CHOICES]):
            values[f"choice_label_{i}"] = choice["label"]
            values[f"choice_to_{i}"] = choice.get("to") or ""
        values["timeout_amount"], values["timeout_unit"] = _split(step["timeout_minutes"])
        values["on_timeout"] = step.get("on_timeout") or ""
    if step["type"] == "condition":
        test = step.get("test", {})
        kind = {("tag", "has"): "tag", ("tag", "lacks"): "no_tag", ("group", "in"): "group"}.get(
            (test.get("field"), test.get("op")),
            "no_group" if test.get("field") == "group" else "signal",
        )
        values["test_kind"] = kind
        values["tag_id"] = str(test.get("value", "")) if kind in ("tag", "no_tag") else ""
        values["group_id"] = str(test.get("value", "")) if kind in ("group", "no_group") else ""
        if kind == "signal":
            values["signal"] = str(test.get("field", "")).removeprefix("signal.")
            values["op"] = test.get("op", ">=")
            values["value"] = "" if test.get("value") is None else f"{test['value']:g}"
        values["then"] = step.get("then") or ""
        values["else"] = step.get("else") or ""
    values["add"] = [str(i) for i in step.get("add", [])]
    values["remove"] = [str(i) for i in step.get("remove", [])]
    values["reason"] = step.get("reason", "")
    values["url"] = step.get("url", "")
    values["to"] = step.get("to", "")
    return values


def _minutes(amount: str, unit: str) -> int | str:
    """A duration in minutes; what is not a number goes on as given, for core to name."""
    try:
        return int(amount) * UNITS.get(unit, 1)
    except ValueError:
        return amount


def _message_of(form: FormData) -> dict[str, Any] | None:
    template = str(form.get("template_id", "")).strip()
    text = str(form.get("text", "")).strip()
    if template:
        return {"template_id": template}
    return {"text": text} if text else None


def step_from_form(kind: str, key: str, form: FormData) -> dict[str, Any]:
    """The step's JSON from its form. Unknown kinds and bad values pass through for core's
    validation to name; nothing here decides what is allowed."""
    get = lambda name: str(form.get(name, "")).strip()  # noqa: E731
    step: dict[str, Any] = {"key": key, "type": kind}
    if get("title"):
        step["title"] = get("title")
    if kind == "send":
        step["message"] = _message_of(form)
    elif kind == "wait":
        mode = get("wait_mode") or "duration"
        if mode == "time":
            step["until_time"] = get("at") or None
        elif mode == "preferred":
            step["preferred_time"] = True
        else:
            step["minutes"] = _minutes(get("amount"), get("unit"))
    elif kind == "wait_for_reply":
        step["message"] = _message_of(form)
        step["choices"] = [
            {"label": get(f"choice_label_{i}"), "to": get(f"choice_to_{i}") or None}
            for i in range(CHOICES)
            if get(f"choice_label_{i}")
        ]
        step["timeout_minutes"] = _minutes(get("timeout_amount"), get("timeout_unit"))
        step["on_timeout"] = get("on_timeout") or None
    elif kind == "condition":
        test_kind = get("test_kind") or "tag"
        test: dict[str, Any]
        if test_kind in ("tag", "no_tag"):
            test = {
                "field": "tag",
                "op": "has" if test_kind == "tag" else "lacks",
                "value": get("tag_id"),
            }
        elif test_kind in ("group", "no_group"):
            test = {
                "field": "group",
                "op": "in" if test_kind == "group" else "not_in",
                "value": get("group_id"),
            }
        else:
            test = {"field": f"signal.{get('signal')}", "op": get("op") or "exists"}
            if get("value"):
                test["value"] = _number(get("value"))
        step["test"] = test
        step["then"] = get("then") or None
        step["else"] = get("else") or None
    elif kind in ("tags", "groups"):
        step["add"] = [str(v) for v in form.getlist("add") if str(v)]
        step["remove"] = [str(v) for v in form.getlist("remove") if str(v)]
    elif kind == "alert":
        step["reason"] = get("reason")
    elif kind == "webhook":
        step["url"] = get("url")
    elif kind == "goto":
        step["to"] = get("to")
    return step


def _number(value: str) -> float | str:
    try:
        return float(value.replace(",", "."))
    except ValueError:
        return value


def new_key(kind: str, steps: list[dict[str, Any]]) -> str:
    """A stable key for a new step: its kind and the first free number ("wait-2")."""
    taken = {str(s["key"]) for s in steps}
    base = re.sub(r"[^a-z0-9]+", "-", kind.lower()).strip("-") or "step"
    n = 1
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


def error_field(where: str, index: int) -> str:
    """The form field beside which an error about ``where`` (``steps[3].choices[0].to``,
    ``steps.3.message``) is shown; errors about other steps or the journey go on top."""
    found = re.match(r"^steps(?:\[(\d+)\]|\.(\d+))\.?(.*)$", where)
    if not found:
        return "form"
    at = int(found.group(1) or found.group(2))
    if at != index:
        return "form"
    rest = found.group(3)
    choice = re.match(r"^choices(?:\[(\d+)\]|\.(\d+))", rest)
    if choice:
        i = choice.group(1) or choice.group(2)
        return f"choice_to_{i}" if rest.endswith("to") else f"choice_label_{i}"
    head = re.split(r"[.\[]", rest, maxsplit=1)[0]
    return _FORM_FIELDS.get(head, "form")
