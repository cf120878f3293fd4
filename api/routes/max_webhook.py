"""The MAX webhook (``VESTNIK_MAX_WEBHOOK_URL``): updates in, checked by their secret.

MAX sends the subscription's secret in ``X-Max-Bot-Api-Secret``; it is compared in constant time
and a wrong or missing one gets 401. MAX counts only a 200 as delivered and drops a subscription
after 8 hours of failures, so the update is handled in the background and answered at once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response

from api.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from bot.max_bot import MaxBot

PATH = "/max/webhook"
SECRET_HEADER = "X-Max-Bot-Api-Secret"
router = APIRouter(route_class=UnitOfWork, tags=["max"], include_in_schema=False)
log = logging.getLogger(__name__)
_handling: set[asyncio.Task[None]] = set()


@router.post(PATH)
async def max_webhook(request: Request) -> Response:
    bot: MaxBot | None = getattr(request.app.state, "max_bot", None)
    if bot is None:
        return Response(status_code=404)
    expected = request.app.state.settings.max_webhook_secret
    sent = request.headers.get(SECRET_HEADER, "")
    if not hmac.compare_digest(sent.encode(), expected.encode()):
        return Response(status_code=401)
    try:
        update: Any = json.loads(await request.body())
    except ValueError:
        return Response(status_code=400)
    if not isinstance(update, dict) or "update_type" not in update:
        return Response(status_code=400)
    task = asyncio.create_task(_handle(bot, update))
    _handling.add(task)
    task.add_done_callback(_handling.discard)
    return Response(status_code=200)


async def _handle(bot: MaxBot, update: dict[str, Any]) -> None:
    try:
        await bot.handle(update)
    except Exception:
        log.exception("MAX update %s failed", update.get("update_type"))
