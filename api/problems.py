"""Every error the API returns is application/problem+json (RFC 9457) naming the field at fault."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.types import Send

from api.statuses import status_of
from core.db import STATEMENT_CANCELLED
from core.errors import DomainError, Invalid
from webapp.errors import MINI_APP, mini_app_error

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"


def problem(
    status: int,
    title: str,
    detail: str,
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    code: str | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if code is not None:
        body["code"] = code  # stable, for clients to branch on (core.errors)
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def send_problem(
    send: Send, status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> None:
    """The same problem+json, answered from ASGI middleware (before any route runs)."""
    response = problem(status, title, detail, errors)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})


def field_name(loc: tuple[int | str, ...] | list[int | str]) -> str:
    parts = list(loc)
    if (parts and parts[0] == "body") or (parts and parts[0] in ("query", "path", "header")):
        parts = parts[1:]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or "body"


async def _domain(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if request.url.path.startswith(MINI_APP):
        return await mini_app_error(request, exc)  # the Mini App's one handler, in its language
    status = status_of(exc)
    errors = (
        [{"field": e.field, "message": e.message} for e in exc.errors]
        if isinstance(exc, Invalid)
        else None
    )
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem(status, exc.title, exc.detail, errors, headers, exc.code)


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        message = err["msg"]
        if err["type"] == "json_invalid":
            message = "the body is not valid JSON"
        errors.append({"field": field_name(err["loc"]), "message": message})
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    return problem(422, "Invalid input", detail, errors)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, str(exc.detail), str(exc.detail), headers=headers)


async def _integrity(_: Request, exc: Exception) -> JSONResponse:
    # Core checks uniqueness first; this is the rare race where two requests collide.
    log.info("integrity error: %s", exc)
    return problem(
        409, "Conflict", "the change conflicts with data written at the same time; retry"
    )


async def _database(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DBAPIError)  # IntegrityError, a subclass, has its own handler
    if getattr(exc.orig, "sqlstate", None) == STATEMENT_CANCELLED:
        return await _too_slow(request, exc)
    if not (exc.connection_invalidated or isinstance(exc.orig, OSError)):
        return await _unexpected(request, exc)  # a statement that failed: ours to fix
    # The pool has dropped the broken connections: the next request opens fresh ones.
    log.warning("database unreachable: %s", exc)
    return problem(
        503,
        "Database unavailable",
        "the database connection was lost; nothing was changed, retry in a moment",
        headers={"Retry-After": "1"},
    )


async def _too_slow(request: Request, exc: DBAPIError) -> Response:
    # Past statement_timeout (api_statement_timeout_seconds): the request's transaction is rolled
    # back, so nothing of it was written.
    log.warning("statement cancelled on %s %s: %s", request.method, request.url.path, exc.orig)
    seconds = f"{request.app.state.settings.api_statement_timeout_seconds:g}"
    return await _unavailable(
        request,
        "too_slow",
        "Too slow",
        f"the database took more than {seconds} s over this request and gave up; nothing was "
        "changed. Retry later, or ask for less at once (a smaller page, a narrower audience)",
        f"the database took more than {seconds} s",
        retry_after=5,
    )


async def _busy(request: Request, exc: Exception) -> Response:
    # Every connection of the pool (and its overflow) stayed in use for db_pool_timeout_seconds:
    # the request never reached the database, so it changed nothing.
    log.warning("no free database connection for %s %s: %s", request.method, request.url.path, exc)
    return await _unavailable(
        request,
        "busy",
        "Busy",
        "every database connection of this server is in use; nothing was changed, retry in a "
        "moment",
        "every database connection is in use",
        retry_after=1,
    )


async def _unavailable(
    request: Request, code: str, title: str, detail: str, short: str, *, retry_after: int
) -> Response:
    """A 503 with a stable ``code``: problem+json with Retry-After, or in the Mini App an alert in
    the member's words (``short`` where the code has none)."""
    if request.url.path.startswith(MINI_APP):
        return await mini_app_error(request, DomainError(short, code=code), page_status=503)
    headers = {"Retry-After": str(retry_after)}
    return problem(503, title, detail, code=code, headers=headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return problem(500, "Internal error", "something went wrong on our side; it has been logged")


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(DBAPIError, _database)
    app.add_exception_handler(PoolTimeout, _busy)
    app.add_exception_handler(Exception, _unexpected)
