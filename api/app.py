"""The FastAPI application: REST API under /api/v1, OpenAPI at /openapi.json, docs at /docs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import text

from api import openapi, problems
from api.deps import SessionDep
from api.kept_answers import KeptAnswers, KeptFigures
from api.limits import BodySizeLimit
from api.metrics import exposition
from api.nul_guard import NulGuard
from api.routes import (
    answer_links,
    audience,
    broadcasts,
    calendar,
    code_words,
    events,
    feeds,
    groups,
    invites,
    journeys,
    max_webhook,
    members,
    roles,
    signals,
    statistics,
    tags,
    telegram,
    templates,
    tokens,
    workspace,
)
from core import kinds
from core.audience.preview import INDEXES
from core.clock import utcnow
from core.collector import settle_collector
from core.db import make_engine, make_sessionmaker
from core.embedded import database_url
from core.insights.metrics import operator_figures
from core.listening import listen
from core.reads.cache import ReadCache
from core.settings import Settings, get_settings
from core.teams import token_cache
from webapp import admin as webapp_admin
from webapp import code_words as webapp_code_words
from webapp import compose as webapp_compose
from webapp import console as webapp_console
from webapp import event_editor as webapp_events
from webapp import insights as webapp_insights
from webapp import journeys as webapp_journeys
from webapp import labels as webapp_labels
from webapp import message_templates as webapp_templates
from webapp import people as webapp_people
from webapp import picker as webapp_picker
from webapp import routes as webapp_routes

DESCRIPTION = """
vestnik keeps a team's people, roles, groups, tags and events, and reminds them.

Authenticate with an API token: `Authorization: Bearer vst_…`. A token belongs to one workspace, so
paths carry no workspace id. Create the first one with `vestnik workspace create NAME`.

Errors are `application/problem+json` (RFC 9457); `errors[].field` names what to fix.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    kinds.install()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db_url = await database_url(settings)
        engine = make_engine(
            db_url,
            pool_size=settings.db_pool_size,
            statement_timeout=settings.api_statement_timeout_seconds,
            pool_timeout=settings.db_pool_timeout_seconds,
        )
        app.state.engine = engine
        app.state.sessions = make_sessionmaker(engine)
        tokens_seen = app.state.token_cache = token_cache.TokenCache()
        hearing = asyncio.create_task(
            listen(
                db_url,
                token_cache.CHANNEL,
                heard=tokens_seen.heard,
                listening=tokens_seen.listening,
                deaf=tokens_seen.deaf,
            )
        )
        webhook = None
        if settings.bot_webhook_url is not None and settings.telegram_token is not None:
            from bot.webhook import WebhookBot
            from core.embedded import redis_url

            webhook = WebhookBot(settings, await redis_url(settings), app.state.sessions)
            await webhook.start()
        app.state.webhook = webhook
        max_client = max_bot = None
        if settings.max_webhook_url is not None and settings.max_token is not None:
            from bot.max_bot import max_bot_for
            from core.embedded import redis_url
            from worker.channels import build_channels
            from worker.max_api import MaxClient

            max_client = MaxClient(settings.max_token.get_secret_value(), str(settings.max_api_url))
            channels, _ = build_channels(settings)
            max_bot = max_bot_for(
                settings, max_client, app.state.sessions, channels, await redis_url(settings)
            )
            app.state.max_bot = max_bot
            await max_client.subscribe(str(settings.max_webhook_url), settings.max_webhook_secret)
        settle_collector()
        try:
            yield
        finally:
            hearing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hearing
            if webhook is not None:
                await webhook.close()
            if max_bot is not None:
                await max_bot.close()
            if max_client is not None:
                await max_client.close()
            await INDEXES.close()
            await engine.dispose()

    app = FastAPI(
        title="vestnik",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
    )
    app.state.settings = settings
    app.state.read_cache = ReadCache(settings.read_cache_mb * 1024 * 1024)
    # Process-wide: the Mini App previews audiences through it as the REST API does.
    INDEXES.max_bytes = settings.audience_index_mb * 1024 * 1024
    problems.install(app)
    openapi.install(app)
    # Added last, runs first: the size limit holds before the NUL check reads a body, and both
    # before a repeated read is answered from what is kept.
    app.state.kept_answers = KeptFigures()
    app.add_middleware(KeptAnswers, figures=app.state.kept_answers)
    app.add_middleware(NulGuard)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)

    v1 = APIRouter(prefix="/api/v1")

    @v1.get("", tags=["operations"])
    async def index() -> dict[str, str]:
        """Where to start: the interactive docs, the OpenAPI schema and the health check."""
        return {
            "name": "vestnik",
            "version": app.version,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": "/healthz",
            "metrics": "/metrics",
        }

    app.include_router(v1)
    for module in (
        members,
        roles,
        groups,
        tags,
        events,
        audience,
        broadcasts,
        tokens,
        calendar,
        invites,
        code_words,
        workspace,
        templates,
        statistics,
        signals,
        journeys,
    ):
        # Each straight into the app rather than through v1: FastAPI matches a request against
        # every level of included routers, twice over; one level fewer halved routing's share of
        # a cached read's CPU (25 -> 12 %, docs/performance.md).
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(feeds.router)
    app.include_router(answer_links.router)
    app.include_router(telegram.router)
    app.include_router(max_webhook.router)
    app.include_router(webapp_routes.router)
    app.include_router(webapp_compose.router)
    app.include_router(webapp_picker.router)
    app.include_router(webapp_events.router)
    app.include_router(webapp_people.router)
    app.include_router(webapp_labels.router)
    app.include_router(webapp_admin.router)
    app.include_router(webapp_insights.router)
    app.include_router(webapp_templates.router)
    app.include_router(webapp_journeys.router)
    app.include_router(webapp_code_words.router)
    app.mount("/app/static", webapp_routes.static, name="webapp-static")
    app.add_exception_handler(webapp_routes.NotSignedIn, webapp_routes.not_signed_in)
    app.add_exception_handler(webapp_console.Refused, webapp_console.refused)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics(session: SessionDep) -> Response:
        """Prometheus metrics: queue depth, deliveries by channel and outcome, job lateness.
        Totals over all workspaces, read from Postgres."""
        body, content_type = exposition(await operator_figures(session, utcnow()))
        return Response(body, media_type=content_type)

    @app.get("/healthz", tags=["operations"])
    async def healthz(session: SessionDep) -> dict[str, str]:
        """Liveness and database reachability."""
        await session.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
