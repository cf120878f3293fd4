"""members are scanned by one process: an audience's counts are not handed to parallel workers

An audience's counts pass over a workspace's members with two hashed sets of member ids (those
the rule's groups, tags and roles include, those it excludes). At 100,000 members Postgres
handed that pass to two parallel workers, and each built both sets again: 95-110 ms, against
70-73 ms in one process (psql, the counts query of ``bench/audience_preview.py``, interleaved).
The storage parameter applies to every plan over the table and costs no statement per request.

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE members SET (parallel_workers = 0)")


def downgrade() -> None:
    op.execute("ALTER TABLE members RESET (parallel_workers)")
