"""A series keeps its start as given in wall-clock time (RFC 5545): a start inside a DST gap
(02:30 on a spring-forward day) stays 02:30 for every later occurrence.

Existing rows get the wall time their instant shows in their zone, which is what they repeated at
until now.

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("starts_local", sa.DateTime(timezone=False), nullable=True))
    op.execute(
        "UPDATE events SET starts_local = (starts_at AT TIME ZONE timezone) WHERE NOT all_day"
    )


def downgrade() -> None:
    op.drop_column("events", "starts_local")
