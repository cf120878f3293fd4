"""The published OpenAPI schema says what every route can answer: each error is
application/problem+json (RFC 9457) with the statuses vestnik uses, so generated clients and
schema checkers (schemathesis) meet no undocumented status or content type."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; errors[].field names what to fix",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable, for clients to branch on"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_ERRORS = {
    "400": "The request is malformed",
    "401": "Missing, malformed or revoked API token",
    "403": "The token's role may not do this",
    "404": "No such thing in this workspace (another workspace's ids look the same)",
    "409": "It clashes with what exists (a duplicate name, a state that does not allow it)",
    "413": "The body is over the size limit",
    "422": "Invalid input; errors[].field names each field to fix",
    "429": "Too soon; Retry-After says when to try again",
    "503": "The database was lost, too slow (code too_slow) or all its connections busy (code "
    "busy); nothing was changed; Retry-After says when to try again",
}


def install(app: FastAPI) -> None:
    """Publish every route's error answers as problem+json, once, when the schema is first asked."""

    def schema() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        components = document.setdefault("components", {}).setdefault("schemas", {})
        components["Problem"] = PROBLEM_SCHEMA
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path in document.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                for status, description in _ERRORS.items():
                    responses[status] = {"description": description, "content": problem}
        app.openapi_schema = document
        return document

    app.openapi = schema  # type: ignore[method-assign]
