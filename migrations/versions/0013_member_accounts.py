"""Messenger accounts: ``member_accounts`` replaces ``members.telegram_user_id``.

A member may be on Telegram, MAX or both; each account names the user id the messenger knows them
by and the chat a bot writes to them in. Every Telegram id moves to an account (the private chat
with a Telegram user has the user's id), and the downgrade moves them back; MAX accounts have no
place before this revision, so a downgrade refuses while there are any rather than lose them.

Revision ID: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_accounts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column(
            "messenger",
            sa.Enum(
                "telegram",
                "max",
                name="messenger",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("external_id", sa.String(length=64), nullable=False),
        sa.Column("chat_id", sa.String(length=64), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_member_accounts_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_member_accounts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_accounts")),
        sa.UniqueConstraint(
            "workspace_id",
            "messenger",
            "external_id",
            name=op.f("uq_member_accounts_workspace_id_messenger_external_id"),
        ),
        sa.UniqueConstraint(
            "member_id", "messenger", name=op.f("uq_member_accounts_member_id_messenger")
        ),
    )
    op.create_index(
        op.f("ix_member_accounts_workspace_id"), "member_accounts", ["workspace_id"], unique=False
    )
    op.execute(
        """
        INSERT INTO member_accounts (id, workspace_id, member_id, messenger, external_id, chat_id,
                                     created_at)
        SELECT gen_random_uuid(), workspace_id, id, 'telegram', telegram_user_id::text,
               telegram_user_id::text, created_at
        FROM members WHERE telegram_user_id IS NOT NULL
        """
    )
    op.drop_constraint(op.f("uq_members_workspace_id_telegram_user_id"), "members", type_="unique")
    op.drop_column("members", "telegram_user_id")
    # A used personal invite remembers its user by messenger and id.
    op.add_column("invites", sa.Column("used_by", sa.String(length=100), nullable=True))
    op.execute(
        "UPDATE invites SET used_by = 'telegram:' || used_by_telegram_user_id::text "
        "WHERE used_by_telegram_user_id IS NOT NULL"
    )
    op.drop_column("invites", "used_by_telegram_user_id")


def downgrade() -> None:
    bind = op.get_bind()
    others = bind.scalar(
        sa.text(
            "SELECT (SELECT count(*) FROM member_accounts WHERE messenger <> 'telegram') + "
            "(SELECT count(*) FROM invites WHERE used_by NOT LIKE 'telegram:%')"
        )
    )
    if others:
        raise RuntimeError(
            f"{others} member account(s) or used invite(s) on messengers other than Telegram have "
            "no place before revision 0013; remove them first (nothing was changed)"
        )
    op.add_column("invites", sa.Column("used_by_telegram_user_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE invites SET used_by_telegram_user_id = substr(used_by, 10)::bigint "
        "WHERE used_by LIKE 'telegram:%'"
    )
    op.drop_column("invites", "used_by")
    op.add_column("members", sa.Column("telegram_user_id", sa.BigInteger(), nullable=True))
    op.execute(
        """
        UPDATE members AS m SET telegram_user_id = a.external_id::bigint
        FROM member_accounts AS a
        WHERE a.member_id = m.id AND a.messenger = 'telegram'
        """
    )
    op.create_unique_constraint(
        op.f("uq_members_workspace_id_telegram_user_id"),
        "members",
        ["workspace_id", "telegram_user_id"],
    )
    op.drop_index(op.f("ix_member_accounts_workspace_id"), table_name="member_accounts")
    op.drop_table("member_accounts")
