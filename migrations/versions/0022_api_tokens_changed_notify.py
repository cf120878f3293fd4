"""Tell API processes when a token is revoked, changed or deleted: NOTIFY ``vestnik_api_tokens``.

Each API process keeps the tokens it has seen in memory so that a request's token costs no
query (core/teams/token_cache.py); this notice, sent when the change commits, drops the token
there at once. A token's use (``last_used_at``) notifies nobody.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION vestnik_api_token_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE'
               OR (OLD.token_hash, OLD.workspace_id, OLD.role, OLD.name, OLD.revoked_at)
                  IS DISTINCT FROM
                  (NEW.token_hash, NEW.workspace_id, NEW.role, NEW.name, NEW.revoked_at) THEN
                PERFORM pg_notify('vestnik_api_tokens', OLD.token_hash);
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER api_tokens_changed AFTER UPDATE OR DELETE ON api_tokens
        FOR EACH ROW EXECUTE FUNCTION vestnik_api_token_changed()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER api_tokens_changed ON api_tokens")
    op.execute("DROP FUNCTION vestnik_api_token_changed()")
