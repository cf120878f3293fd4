"""Journeys: definitions, member runs, the run log and its tallies; jobs may name a run; the
per-member message caps of a workspace.

Revision ID: 0016
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KINDS = "'reminder', 'confirmation_request', 'nudge', 'deadline_summary', 'broadcast'"


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "active",
                "paused",
                "archived",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("trigger", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "reentry",
            sa.Enum(
                "once",
                "after_end",
                "never_inside",
                name="reentry",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("steps", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("stuck_after_hours", sa.Integer(), server_default="72", nullable=False),
        sa.Column("webhook_secret", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_journeys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journeys")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_journeys_workspace_id_name")),
    )
    op.create_index(op.f("ix_journeys_workspace_id"), "journeys", ["workspace_id"], unique=False)
    op.create_table(
        "journey_days",
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("entered", sa.BigInteger(), nullable=False),
        sa.Column("finished", sa.BigInteger(), nullable=False),
        sa.Column("left", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"],
            ["journeys.id"],
            name=op.f("fk_journey_days_journey_id_journeys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("journey_id", "day", name=op.f("pk_journey_days")),
    )
    op.create_table(
        "journey_dwell",
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("step_key", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"],
            ["journeys.id"],
            name=op.f("fk_journey_dwell_journey_id_journeys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("journey_id", "step_key", "bucket", name=op.f("pk_journey_dwell")),
    )
    op.create_table(
        "journey_runs",
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("entry_key", sa.String(length=120), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "finished",
                "left",
                "failed",
                name="status",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("step_key", sa.String(length=64), nullable=True),
        sa.Column("step_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("visit", sa.Integer(), server_default="1", nullable=False),
        sa.Column(
            "stage",
            sa.Enum(
                "enter", "wait", name="stage", native_enum=False, create_constraint=True, length=8
            ),
            nullable=False,
        ),
        sa.Column("next_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("again", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("entered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"],
            ["journeys.id"],
            name=op.f("fk_journey_runs_journey_id_journeys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_journey_runs_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_journey_runs_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_runs")),
        sa.UniqueConstraint(
            "journey_id",
            "member_id",
            "entry_key",
            name=op.f("uq_journey_runs_journey_id_member_id_entry_key"),
        ),
    )
    op.create_index(
        "ix_journey_runs_at_step",
        "journey_runs",
        ["journey_id", "step_key", "step_since"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index(
        "ix_journey_runs_due",
        "journey_runs",
        ["next_at"],
        unique=False,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_journey_runs_member", "journey_runs", ["member_id", "status"], unique=False)
    op.create_index(
        op.f("ix_journey_runs_workspace_id"), "journey_runs", ["workspace_id"], unique=False
    )
    op.create_index(
        "uq_journey_runs_inside",
        "journey_runs",
        ["journey_id", "member_id"],
        unique=True,
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "journey_step_tallies",
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("step_key", sa.String(length=64), nullable=False),
        sa.Column("reached", sa.BigInteger(), nullable=False),
        sa.Column("went_on", sa.BigInteger(), nullable=False),
        sa.Column("left", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["journey_id"],
            ["journeys.id"],
            name=op.f("fk_journey_step_tallies_journey_id_journeys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("journey_id", "step_key", name=op.f("pk_journey_step_tallies")),
    )
    op.create_table(
        "journey_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("journey_id", sa.Uuid(), nullable=False),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("step_key", sa.String(length=64), nullable=True),
        sa.Column("visit", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=24), nullable=False),
        sa.Column(
            "detail", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False
        ),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.String(length=200), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name=op.f("fk_journey_log_job_id_jobs"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["journey_id"],
            ["journeys.id"],
            name=op.f("fk_journey_log_journey_id_journeys"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["members.id"],
            name=op.f("fk_journey_log_member_id_members"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["journey_runs.id"],
            name=op.f("fk_journey_log_run_id_journey_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_journey_log_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_log")),
    )
    op.create_index(op.f("ix_journey_log_journey_id"), "journey_log", ["journey_id"], unique=False)
    op.create_index("ix_journey_log_member_at", "journey_log", ["member_id", "at"], unique=False)
    op.create_index("ix_journey_log_run", "journey_log", ["run_id", "id"], unique=False)
    op.create_index(
        op.f("ix_journey_log_workspace_id"), "journey_log", ["workspace_id"], unique=False
    )
    op.create_index(
        "uq_journey_log_sent",
        "journey_log",
        ["run_id", "visit"],
        unique=True,
        postgresql_where=sa.text("action = 'sent'"),
    )
    op.add_column("jobs", sa.Column("journey_run_id", sa.Uuid(), nullable=True))
    op.create_index(op.f("ix_jobs_journey_run_id"), "jobs", ["journey_run_id"], unique=False)
    op.create_foreign_key(
        op.f("fk_jobs_journey_run_id_journey_runs"),
        "jobs",
        "journey_runs",
        ["journey_run_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.drop_constraint(op.f("ck_jobs_kind"), "jobs", type_="check")
    op.create_check_constraint(
        "kind", "jobs", f"kind IN ({_KINDS}, 'journey_message', 'journey_alert')"
    )
    op.drop_constraint(op.f("ck_jobs_subject"), "jobs", type_="check")
    op.create_check_constraint(
        "subject", "jobs", "num_nonnulls(event_id, broadcast_id, journey_run_id) = 1"
    )
    op.add_column(
        "workspaces",
        sa.Column("member_hourly_cap", sa.Integer(), server_default="3", nullable=True),
    )
    op.add_column(
        "workspaces",
        sa.Column("member_daily_cap", sa.Integer(), server_default="10", nullable=True),
    )


def downgrade() -> None:
    op.drop_column("workspaces", "member_daily_cap")
    op.drop_column("workspaces", "member_hourly_cap")
    op.execute("DELETE FROM jobs WHERE journey_run_id IS NOT NULL")
    op.drop_constraint(op.f("ck_jobs_subject"), "jobs", type_="check")
    op.create_check_constraint("subject", "jobs", "(event_id IS NULL) <> (broadcast_id IS NULL)")
    op.drop_constraint(op.f("ck_jobs_kind"), "jobs", type_="check")
    op.create_check_constraint("kind", "jobs", f"kind IN ({_KINDS})")
    op.drop_constraint(op.f("fk_jobs_journey_run_id_journey_runs"), "jobs", type_="foreignkey")
    op.drop_index(op.f("ix_jobs_journey_run_id"), table_name="jobs")
    op.drop_column("jobs", "journey_run_id")
    op.drop_index(
        "uq_journey_log_sent", table_name="journey_log", postgresql_where=sa.text("action = 'sent'")
    )
    op.drop_index(op.f("ix_journey_log_workspace_id"), table_name="journey_log")
    op.drop_index("ix_journey_log_run", table_name="journey_log")
    op.drop_index("ix_journey_log_member_at", table_name="journey_log")
    op.drop_index(op.f("ix_journey_log_journey_id"), table_name="journey_log")
    op.drop_table("journey_log")
    op.drop_table("journey_step_tallies")
    op.drop_index(
        "uq_journey_runs_inside",
        table_name="journey_runs",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_index(op.f("ix_journey_runs_workspace_id"), table_name="journey_runs")
    op.drop_index("ix_journey_runs_member", table_name="journey_runs")
    op.drop_index(
        "ix_journey_runs_due",
        table_name="journey_runs",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_index(
        "ix_journey_runs_at_step",
        table_name="journey_runs",
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("journey_runs")
    op.drop_table("journey_dwell")
    op.drop_table("journey_days")
    op.drop_index(op.f("ix_journeys_workspace_id"), table_name="journeys")
    op.drop_table("journeys")
