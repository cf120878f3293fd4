"""Deliveries whose fate is unknown, and members a bot cannot write to yet.

``unknown``: handed to the channel by a worker that never recorded the answer; ``handed_at`` says
since when a row is ``sending`` so the scheduler can tell a live send from one left behind.
``not_joined``: Telegram's 403 "bot can't initiate conversation with a user".

Revision ID: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None

_OLD = "status IN ('queued', 'sending', 'sent', 'deferred', 'unreachable', 'failed', 'cancelled')"
_NEW = (
    "status IN ('queued', 'sending', 'sent', 'deferred', 'unreachable', 'not_joined', "
    "'failed', 'cancelled', 'unknown')"
)


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("handed_at", sa.DateTime(timezone=True), nullable=True))
    # Rows already ``sending`` count from now: the sweep gives them a whole lease.
    op.execute("UPDATE deliveries SET handed_at = now() WHERE status = 'sending'")
    op.create_index(
        "ix_deliveries_handed",
        "deliveries",
        ["handed_at"],
        postgresql_where=sa.text("status = 'sending'"),
    )
    op.drop_constraint(op.f("ck_deliveries_status"), "deliveries", type_="check")
    op.create_check_constraint(op.f("ck_deliveries_status"), "deliveries", sa.text(_NEW))


def downgrade() -> None:
    op.execute(
        "UPDATE deliveries SET status = 'failed', last_error = 'unknown fate' "
        "WHERE status = 'unknown'"
    )
    op.execute("UPDATE deliveries SET status = 'unreachable' WHERE status = 'not_joined'")
    op.drop_constraint(op.f("ck_deliveries_status"), "deliveries", type_="check")
    op.create_check_constraint(op.f("ck_deliveries_status"), "deliveries", sa.text(_OLD))
    op.drop_index("ix_deliveries_handed", table_name="deliveries")
    op.drop_column("deliveries", "handed_at")
