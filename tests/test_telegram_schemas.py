"""aiogram's Telegram types, their schemas built on first use (bot/telegram_schemas.py), validate
and serialise exactly as aiogram's own import builds them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What Telegram sends and what the bot receives back, in the shapes vestnik meets.
_UPDATES = [
    {
        "update_id": 1,
        "message": {
            "message_id": 7,
            "date": 1764000000,
            "chat": {"id": 42, "type": "private", "first_name": "Anna"},
            "from": {"id": 42, "is_bot": False, "first_name": "Anna", "language_code": "ru"},
            "text": "/start join-abc",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    },
    {
        "update_id": 2,
        "callback_query": {
            "id": "cb1",
            "chat_instance": "ci",
            "from": {"id": 42, "is_bot": False, "first_name": "Anna"},
            "data": "a:going:123",
            "message": {
                "message_id": 8,
                "date": 1764000001,
                "chat": {"id": 42, "type": "private"},
                "text": "Standup at 10:00",
                "reply_markup": {
                    "inline_keyboard": [[{"text": "Going", "callback_data": "a:going:123"}]]
                },
            },
        },
    },
    {
        "update_id": 3,
        "my_chat_member": {
            "chat": {"id": -100, "type": "supergroup", "title": "Team"},
            "from": {"id": 42, "is_bot": False, "first_name": "Anna"},
            "date": 1764000002,
            "old_chat_member": {
                "status": "left",
                "user": {"id": 9, "is_bot": True, "first_name": "B"},
            },
            "new_chat_member": {
                "status": "member",
                "user": {"id": 9, "is_bot": True, "first_name": "B"},
            },
        },
    },
]

_PROBE = """
import hashlib, json, sys, warnings
warnings.simplefilter("ignore")
if sys.argv[1] == "deferred":
    import bot.app  # noqa: F401  (what `vestnik bot` imports first)
import aiogram.methods as methods
import aiogram.types as types
from pydantic import BaseModel

models = [
    getattr(module, name)
    for module in (types, methods)
    for name in module.__all__
    if isinstance(getattr(module, name), type) and issubclass(getattr(module, name), BaseModel)
]
built_at_import = sorted(m.__name__ for m in models if m.__pydantic_complete__)
schemas = {}
for model in models:
    name = f"{model.__module__}.{model.__qualname__}"
    try:
        text = json.dumps(model.model_json_schema(), sort_keys=True, default=str)
    except Exception as error:  # a field of a type JSON Schema cannot say (an exception)
        text = f"{type(error).__name__}: {error}"
    schemas[name] = hashlib.sha256(text.encode()).hexdigest()
updates = [
    types.Update.model_validate(u).model_dump(mode="json", exclude_unset=True, by_alias=True)
    for u in json.loads(sys.argv[2])
]
refused = []
for bad in ({"update_id": "one"}, {"update_id": 1, "message": {"message_id": 1, "chat": {}}}):
    try:
        types.Update.model_validate(bad)
    except ValueError as error:
        refused.append([(e["loc"], e["type"]) for e in error.errors()])
sent = methods.SendMessage(
    chat_id=42,
    text="Standup at 10:00",
    reply_markup=types.InlineKeyboardMarkup(
        inline_keyboard=[[types.InlineKeyboardButton(text="Going", callback_data="a:going:1")]]
    ),
).model_dump(mode="json", exclude_unset=True)

# Telegram's answers, parsed as the bot and the worker parse them (aiogram's generic Response).
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter

bot = Bot("42:TEST")
raw = json.loads(sys.argv[2])
answered = []
for method, answer in (
    (methods.GetUpdates(), {"ok": True, "result": raw}),
    (methods.SendMessage(chat_id=42, text="x"), {"ok": True, "result": raw[1]["callback_query"]["message"]}),
    (methods.AnswerCallbackQuery(callback_query_id="cb1"), {"ok": True, "result": True}),
):
    result = bot.session.check_response(bot, method, 200, json.dumps(answer)).result
    dump = lambda r: r.model_dump(mode="json", exclude_unset=True, by_alias=True)
    answered.append([dump(r) for r in result] if isinstance(result, list) else
                    dump(result) if isinstance(result, BaseModel) else result)
try:
    bot.session.check_response(bot, methods.SendMessage(chat_id=42, text="x"), 429, json.dumps(
        {"ok": False, "error_code": 429, "description": "Too Many Requests: retry after 7",
         "parameters": {"retry_after": 7}}))
except TelegramRetryAfter as error:
    answered.append(error.retry_after)
print(json.dumps({"built": built_at_import, "count": len(models), "schemas": schemas,
                  "updates": updates, "refused": refused, "sent": sent,
                  "answered": answered}))
"""


def _probe(mode: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, json.dumps(_UPDATES)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_deferred_telegram_types_validate_and_serialise_as_aiogram_builds_them() -> None:
    eager, deferred = _probe("eager"), _probe("deferred")
    assert eager["count"] == deferred["count"] and int(str(eager["count"])) > 500
    # The deferral is what makes the bot and worker start in a third of the time: aiogram's
    # import builds every type, the bot's none of them until it is used.
    assert "Update" in eager["built"] and "Message" in eager["built"]  # type: ignore[operator]
    assert not {"Update", "Message", "CallbackQuery"} & set(deferred["built"])  # type: ignore[call-overload]
    assert deferred["schemas"] == eager["schemas"]
    assert deferred["updates"] == eager["updates"]
    updates = deferred["updates"]
    assert isinstance(updates, list)
    assert updates[1]["callback_query"]["data"] == "a:going:123"
    assert updates[0]["message"]["from"]["language_code"] == "ru"
    assert deferred["refused"] == eager["refused"] and len(deferred["refused"]) == 2  # type: ignore[arg-type]
    assert deferred["sent"] == eager["sent"]
    assert deferred["answered"] == eager["answered"]
    answered = deferred["answered"]
    assert isinstance(answered, list) and len(answered) == 4
    assert answered[0] == updates and answered[1]["text"] == "Standup at 10:00"
    assert answered[2] is True and answered[3] == 7
