from __future__ import annotations

import uuid

from fastapi import APIRouter

from api.deps import ActorDep, SessionDep
from api.unit_of_work import UnitOfWork
from core.teams import tokens
from core.teams.schemas import TokenCreate
from core.teams.tokens import IssuedToken, TokenOut

router = APIRouter(route_class=UnitOfWork, prefix="/tokens", tags=["tokens"])


@router.get("")
async def list_tokens(actor: ActorDep, session: SessionDep) -> list[TokenOut]:
    """The workspace's tokens (owner only). Secrets are never shown again."""
    return await tokens.list_tokens(session, actor)


@router.post("", status_code=201)
async def create_token(data: TokenCreate, actor: ActorDep, session: SessionDep) -> IssuedToken:
    """Create a token (owner only). The `token` field is shown this once; store it."""
    out = await tokens.create_token(session, actor, data.role, data.name)
    return out


@router.delete("/{token_id}")
async def revoke_token(token_id: uuid.UUID, actor: ActorDep, session: SessionDep) -> TokenOut:
    """Revoke a token (owner only); it stops working at once."""
    out = await tokens.revoke_token(session, actor, token_id)
    return out
