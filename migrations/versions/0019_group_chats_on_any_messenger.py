"""group chats on any messenger: a linked chat and its announcements name their messenger
(Telegram and MAX chat ids are separate spaces); existing ones are Telegram's

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01 04:33:31.180399
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "chat_links",
        sa.Column("messenger", sa.String(length=16), server_default="telegram", nullable=False),
    )
    op.drop_constraint(op.f("uq_chat_links_chat_id"), "chat_links", type_="unique")
    op.create_unique_constraint(
        op.f("uq_chat_links_messenger_chat_id"), "chat_links", ["messenger", "chat_id"]
    )
    op.add_column(
        "chat_posts",
        sa.Column("messenger", sa.String(length=16), server_default="telegram", nullable=False),
    )
    op.drop_constraint(op.f("uq_chat_posts_job_id_chat_id"), "chat_posts", type_="unique")
    op.create_unique_constraint(
        op.f("uq_chat_posts_job_id_messenger_chat_id"),
        "chat_posts",
        ["job_id", "messenger", "chat_id"],
    )


def downgrade() -> None:
    # Before 0019 only Telegram chats could be linked: MAX ones go.
    op.execute("DELETE FROM chat_posts WHERE messenger <> 'telegram'")
    op.execute("DELETE FROM chat_links WHERE messenger <> 'telegram'")
    op.drop_constraint(op.f("uq_chat_posts_job_id_messenger_chat_id"), "chat_posts", type_="unique")
    op.create_unique_constraint(
        op.f("uq_chat_posts_job_id_chat_id"),
        "chat_posts",
        ["job_id", "chat_id"],
        postgresql_nulls_not_distinct=False,
    )
    op.drop_column("chat_posts", "messenger")
    op.drop_constraint(op.f("uq_chat_links_messenger_chat_id"), "chat_links", type_="unique")
    op.create_unique_constraint(
        op.f("uq_chat_links_chat_id"),
        "chat_links",
        ["chat_id"],
        postgresql_nulls_not_distinct=False,
    )
    op.drop_column("chat_links", "messenger")
