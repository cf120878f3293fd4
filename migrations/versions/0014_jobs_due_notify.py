"""Wake the scheduler when a job becomes due soon: NOTIFY ``vestnik_jobs_due``.

A job made or moved to be due within a minute (a broadcast "now", a lead's nudge, an event
created shortly before its reminder) tells the listening schedulers at once, instead of waiting
for their next poll. Postgres folds identical notifications of one transaction into one, so
planning a thousand jobs wakes each scheduler once. Polling stays as the fallback.

Revision ID: 0014
"""

from __future__ import annotations

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION vestnik_job_due_soon() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.status = 'pending' AND NEW.due_at <= now() + interval '1 minute' THEN
                PERFORM pg_notify('vestnik_jobs_due', '');
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER jobs_due_soon AFTER INSERT OR UPDATE OF status, due_at ON jobs
        FOR EACH ROW EXECUTE FUNCTION vestnik_job_due_soon()
        """
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER jobs_due_soon ON jobs")
    op.execute("DROP FUNCTION vestnik_job_due_soon()")
