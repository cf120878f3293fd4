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


# Statement-level triggers over the changed rows (transition tables): a bulk change of 10,000
# rows bumps each owner once, and the owners are locked in id order first, so two bulk changes
# over the same members cannot deadlock each other.
def _bump(name: str, owners: str, key: str, rows: str, where: str = "") -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM 1 FROM {owners} WHERE id IN (SELECT {key} FROM {rows}{where}) ORDER BY id FOR UPDATE;
  UPDATE {owners} SET calendar_version = calendar_version + 1, calendar_changed_at = now()
   WHERE id IN (SELECT {key} FROM {rows}{where});
  RETURN NULL;
END $$"""


# An event's change shows in feeds when anything its VEVENT holds moved: every edit bumps its
# sequence and updated_at (the engine's bookkeeping sets updated_at too, and DTSTAMP shows it).
EVENT_CHANGED = """ n JOIN old_rows o USING (id)
   WHERE n.updated_at IS DISTINCT FROM o.updated_at OR n.sequence IS DISTINCT FROM o.sequence
      OR n.deleted_at IS DISTINCT FROM o.deleted_at OR n.status IS DISTINCT FROM o.status
      OR n.audience IS DISTINCT FROM o.audience"""

FUNCTIONS = [
    # A workspace's feeds change with its events and their moved occurrences.
    _bump("vestnik_calendar_workspace_new", "workspaces", "workspace_id", "new_rows"),
    _bump("vestnik_calendar_workspace_old", "workspaces", "workspace_id", "old_rows"),
    _bump(
        "vestnik_calendar_event_updated", "workspaces", "n.workspace_id", "new_rows", EVENT_CHANGED
    ),
    # A member's feed changes with their answers and with the groups, tags and roles that
    # decide which events reach them.
    _bump("vestnik_calendar_member_new", "members", "member_id", "new_rows"),
    _bump("vestnik_calendar_member_old", "members", "member_id", "old_rows"),
    # The owner's own fields a feed shows (a name; a member's language and email).
    """
CREATE FUNCTION vestnik_calendar_self() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.calendar_version := OLD.calendar_version + 1;
  NEW.calendar_changed_at := now();
  RETURN NEW;
END $$""",
]


def _statement(table: str, event: str, rows: str, function: str) -> str:
    tables = "NEW TABLE AS new_rows" if rows == "new_rows" else "OLD TABLE AS old_rows"
    if event == "UPDATE" and function == "vestnik_calendar_event_updated":
        tables = "NEW TABLE AS new_rows OLD TABLE AS old_rows"
    return (
        f"CREATE TRIGGER calendar_{table}_{event.lower()} AFTER {event} ON {table} "
        f"REFERENCING {tables} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )


TRIGGERS = [
    _statement("events", "INSERT", "new_rows", "vestnik_calendar_workspace_new"),
    _statement("events", "UPDATE", "new_rows", "vestnik_calendar_event_updated"),
    _statement("events", "DELETE", "old_rows", "vestnik_calendar_workspace_old"),
    _statement("event_overrides", "INSERT", "new_rows", "vestnik_calendar_workspace_new"),
    _statement("event_overrides", "UPDATE", "new_rows", "vestnik_calendar_workspace_new"),
    _statement("event_overrides", "DELETE", "old_rows", "vestnik_calendar_workspace_old"),
    *(
        _statement(table, event, rows, function)
        for table in ("confirmations", "member_groups", "member_tags", "member_roles")
        for event, rows, function in (
            ("INSERT", "new_rows", "vestnik_calendar_member_new"),
            ("UPDATE", "new_rows", "vestnik_calendar_member_new"),
            ("DELETE", "old_rows", "vestnik_calendar_member_old"),
        )
    ),
    "CREATE TRIGGER calendar_workspaces_renamed BEFORE UPDATE ON workspaces FOR EACH ROW "
    "WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.timezone IS DISTINCT FROM NEW.timezone) "
    "EXECUTE FUNCTION vestnik_calendar_self()",
    "CREATE TRIGGER calendar_members_changed BEFORE UPDATE ON members FOR EACH ROW "
    "WHEN (OLD.name IS DISTINCT FROM NEW.name OR OLD.locale IS DISTINCT FROM NEW.locale "
    "OR OLD.email IS DISTINCT FROM NEW.email) EXECUTE FUNCTION vestnik_calendar_self()",
    "CREATE TRIGGER calendar_groups_renamed BEFORE UPDATE ON groups FOR EACH ROW "
    "WHEN (OLD.name IS DISTINCT FROM NEW.name) EXECUTE FUNCTION vestnik_calendar_self()",
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
    for statement in [*FUNCTIONS, *TRIGGERS]:
        op.execute(statement)


def downgrade() -> None:
    for trigger in TRIGGERS:
        words = trigger.split()
        op.execute(f"DROP TRIGGER {words[2]} ON {words[words.index('ON') + 1]}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function.split()[2]}")
    for table in OWNERS:
        op.drop_column(table, "calendar_changed_at")
        op.drop_column(table, "calendar_version")
