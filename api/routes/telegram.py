"""The Telegram webhook (webhook mode only): updates in, checked by their secret token."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response

from api.unit_of_work import UnitOfWork
from bot.webhook_address import PATH, SECRET_HEADER

if TYPE_CHECKING:  # aiogram takes seconds to import; the API needs it only in webhook mode
    from bot.webhook import WebhookBot

router = APIRouter(route_class=UnitOfWork, tags=["telegram"], include_in_schema=False)
log = logging.getLogger(__name__)


@router.post(PATH)
async def telegram_webhook(request: Request) -> Response:
    webhook: WebhookBot | None = getattr(request.app.state, "webhook", None)
    if webhook is None:
        return Response(status_code=404)
    if not webhook.accepts(request.headers.get(SECRET_HEADER)):
        return Response(status_code=401)
    try:
        update = json.loads(await request.body())
    except ValueError:
        return Response(status_code=400)
    if not isinstance(update, dict) or "update_id" not in update:
        return Response(status_code=400)
    # Handled before answering; a failing handler is logged and not retried by Telegram.
    try:
        await webhook.handle(update)
    except Exception:
        log.exception("update %s failed", update.get("update_id"))
    return Response(status_code=200)
