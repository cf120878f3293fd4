"""members by workspace with their id and status: an audience's counts read this index alone

An audience preview counts the members a rule reaches, by status, over every member of the
workspace, probing each id in the rule's sets. The index by name (0023) holds what that needs,
but Postgres chose the table instead: its pages are many times the rows' size (each tag or group
change writes a new row version, for the calendar's version), and the index by name is wide. This
index holds the workspace, the id and the status alone and replaces the index on the workspace:
at 100,000 members, psql, the counts query of ``bench/audience_preview.py``: 64-82 ms from the
table, 45-50 ms from this index. Where the index has spread too (rows updated after a bulk
insert), the planner takes it once random pages are costed as on SSDs (``random_page_cost``
1.1, which the embedded server and docker-compose.yml set; see the README's "Fast reads").

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_members_workspace_id", table_name="members")
    op.create_index(
        "ix_members_workspace_id", "members", ["workspace_id", "id"], postgresql_include=["status"]
    )


def downgrade() -> None:
    op.drop_index("ix_members_workspace_id", table_name="members")
    op.create_index("ix_members_workspace_id", "members", ["workspace_id"])
