"""Signals from other systems, and members' external ids (the id another system knows them by).

Revision ID: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("members", sa.Column("external_id", sa.String(length=200), nullable=True))
    op.create_unique_constraint(
        op.f("uq_members_workspace_id_external_id"), "members", ["workspace_id", "external_id"]
    )
    op.create_table(
        "signals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_signals_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_signals_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
        sa.UniqueConstraint("workspace_id", "key", name=op.f("uq_signals_workspace_id_key")),
    )
    op.create_index(op.f("ix_signals_workspace_id"), "signals", ["workspace_id"], unique=False)
    op.create_index(
        "ix_signals_member_received", "signals", ["member_id", "received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_signals_member_received", table_name="signals")
    op.drop_index(op.f("ix_signals_workspace_id"), table_name="signals")
    op.drop_table("signals")
    op.drop_constraint(op.f("uq_members_workspace_id_external_id"), "members", type_="unique")
    op.drop_column("members", "external_id")
