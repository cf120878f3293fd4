"""members by name: an index that lists and audience previews walk in name order

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 06:03:14.100708
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_members_workspace_name", "members", ["workspace_id", "name", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_members_workspace_name", table_name="members")
