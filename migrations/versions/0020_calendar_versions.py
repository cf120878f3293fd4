"""calendar versions: workspaces, members and groups carry a version that the database bumps, in
the same transaction, on any change to what their calendar feeds show (triggers below), so a
feed's validator is one indexed lookup

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWNERS = ("workspaces", "members", "groups")

FUNCTIONS = """
-- A workspace's feeds change with its events (every column but the engine's own bookkeeping is
-- covered by updated_at, which every ORM update of an event sets) and their moved occurrences.
CREATE FUNCTION vestnik_calendar_workspace() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  ws uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.workspace_id ELSE NEW.workspace_id END;
BEGIN
  UPDATE workspaces SET calendar_version = calendar_version + 1, calendar_changed_at = now()
   WHERE id = ws;
  RETURN NULL;
END $$;

-- A member's feed changes with their answers and with the groups, tags and roles that decide
-- which events reach them.
CREATE FUNCTION vestnik_calendar_member() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  who uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.member_id ELSE NEW.member_id END;
BEGIN
  UPDATE members SET calendar_version = calendar_version + 1, calendar_changed_at = now()
   WHERE id = who;
  RETURN NULL;
END $$;

-- The owner's own fields a feed shows (its name; a member's language and email).
CREATE FUNCTION vestnik_calendar_self() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.calendar_version := OLD.calendar_version + 1;
  NEW.calendar_changed_at := now();
  RETURN NEW;
END $$;
"""

TRIGGERS = """
CREATE TRIGGER calendar_events_changed AFTER INSERT OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION vestnik_calendar_workspace();
CREATE TRIGGER calendar_events_updated AFTER UPDATE ON events
  FOR EACH ROW WHEN (
    OLD.updated_at IS DISTINCT FROM NEW.updated_at
    OR OLD.sequence IS DISTINCT FROM NEW.sequence
    OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at
    OR OLD.status IS DISTINCT FROM NEW.status
    OR OLD.audience IS DISTINCT FROM NEW.audience
  ) EXECUTE FUNCTION vestnik_calendar_workspace();
CREATE TRIGGER calendar_overrides_changed AFTER INSERT OR UPDATE OR DELETE ON event_overrides
  FOR EACH ROW EXECUTE FUNCTION vestnik_calendar_workspace();
CREATE TRIGGER calendar_answers_changed AFTER INSERT OR UPDATE OR DELETE ON confirmations
  FOR EACH ROW EXECUTE FUNCTION vestnik_calendar_member();
CREATE TRIGGER calendar_groups_changed AFTER INSERT OR UPDATE OR DELETE ON member_groups
  FOR EACH ROW EXECUTE FUNCTION vestnik_calendar_member();
CREATE TRIGGER calendar_tags_changed AFTER INSERT OR UPDATE OR DELETE ON member_tags
  FOR EACH ROW EXECUTE FUNCTION vestnik_calendar_member();
CREATE TRIGGER calendar_roles_changed AFTER INSERT OR UPDATE OR DELETE ON member_roles
  FOR EACH ROW EXECUTE FUNCTION vestnik_calendar_member();
CREATE TRIGGER calendar_workspace_renamed BEFORE UPDATE ON workspaces
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.timezone IS DISTINCT FROM NEW.timezone)
  EXECUTE FUNCTION vestnik_calendar_self();
CREATE TRIGGER calendar_member_changed BEFORE UPDATE ON members
  FOR EACH ROW WHEN (
    OLD.name IS DISTINCT FROM NEW.name
    OR OLD.locale IS DISTINCT FROM NEW.locale
    OR OLD.email IS DISTINCT FROM NEW.email
  ) EXECUTE FUNCTION vestnik_calendar_self();
CREATE TRIGGER calendar_group_renamed BEFORE UPDATE ON groups
  FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name)
  EXECUTE FUNCTION vestnik_calendar_self();
"""

DROPS = [
    ("calendar_events_changed", "events"),
    ("calendar_events_updated", "events"),
    ("calendar_overrides_changed", "event_overrides"),
    ("calendar_answers_changed", "confirmations"),
    ("calendar_groups_changed", "member_groups"),
    ("calendar_tags_changed", "member_tags"),
    ("calendar_roles_changed", "member_roles"),
    ("calendar_workspace_renamed", "workspaces"),
    ("calendar_member_changed", "members"),
    ("calendar_group_renamed", "groups"),
]


def upgrade() -> None:
    for table in OWNERS:
        op.add_column(
            table,
            sa.Column("calendar_version", sa.BigInteger(), server_default="0", nullable=False),
        )
        op.add_column(
            table,
            sa.Column(
                "calendar_changed_at",
                sa.DateTime(timezone=True),
                server_default=sa.text("now()"),
                nullable=False,
            ),
        )
    # One statement a call: the driver prepares each, and a prepared statement holds one.
    for function in FUNCTIONS.split("\nCREATE FUNCTION")[1:]:
        op.execute("CREATE FUNCTION" + function)
    for trigger in TRIGGERS.split(";")[:-1]:
        op.execute(trigger)


def downgrade() -> None:
    for trigger, table in DROPS:
        op.execute(f"DROP TRIGGER {trigger} ON {table}")
    for function in ("workspace", "member", "self"):
        op.execute(f"DROP FUNCTION vestnik_calendar_{function}()")
    for table in OWNERS:
        op.drop_column(table, "calendar_changed_at")
        op.drop_column(table, "calendar_version")
