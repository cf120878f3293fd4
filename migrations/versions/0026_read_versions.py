"""read versions: stamps per workspace that the database renews when a transaction that changed
what the API's busiest reads show commits, so an answer kept by that stamp is never stale

The API keeps its answers to member lists, event lists and audience previews by the stamp of
their workspace and kind (``core.reads``). A stamp must move with every change to what its kind
of read shows, whoever makes it (the API, the bot, the worker, psql), so the database renews it
itself. It is random, not a counter: a database
restored from a backup, or a row lost, can never bring back a number that an API process holds
for other data.

It is renewed at commit, not when the change is made: statement triggers note the workspaces
and kinds a transaction touched (``read_version_bumps``, once each per transaction), and a
deferred constraint trigger on those notes renews ``read_versions`` as the transaction commits.
A stamp renewed at the change would hold its row for the rest of the transaction; a second
writer that had locked a member first and then waited for it, while the first went on to that
member, would deadlock. At commit a transaction waits for nothing else but stamps, which it
takes in one order, so a row is held for microseconds and no two writers can wait on each other
through them. The stamps are a table of their own, not a column of ``workspaces``, which event
changes lock ``FOR UPDATE`` (0020) for the whole of their transaction.

Bumps are serialised by the version row's lock, so each committed state of what a kind of read
shows has one stamp: a snapshot that sees stamp S sees exactly the changes of the transactions
up to the one that wrote S. A workspace without a row (none should be: new ones get theirs as they are
created, older ones below) is never cached.

Revision ID: 0026
Revises: 0025
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What each kind of cached read shows (core.reads.cache.Kind), by the tables, all with a
# workspace_id: a member list every person's field and link; an audience preview who belongs to
# what, and their names and status (and whether the groups, tags and roles it names still exist,
# since a kept answer skips that check); an event list the events alone. The bot marks members
# active all day long: that moves the member lists' stamp, not the audience's or the events'.
KINDS = {
    "members": ("members", "audience"),
    "member_accounts": ("members",),
    "member_roles": ("members", "audience"),
    "member_groups": ("members", "audience"),
    "member_tags": ("members", "audience"),
    "roles": ("members", "audience"),
    "groups": ("members", "audience"),
    "tags": ("members", "audience"),
    "events": ("events",),
}

FUNCTIONS = [
    # A statement's changed rows, noted once per workspace, kind (the trigger's arguments) and
    # transaction. ON CONFLICT skips the note (and so its deferred bump) when this transaction
    # has noted it already.
    """
CREATE FUNCTION vestnik_reads_noted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO read_version_bumps (workspace_id, kind)
      SELECT DISTINCT r.workspace_id, k FROM old_rows r, unnest(TG_ARGV) k
      ON CONFLICT DO NOTHING;
  ELSE
    INSERT INTO read_version_bumps (workspace_id, kind)
      SELECT DISTINCT r.workspace_id, k FROM new_rows r, unnest(TG_ARGV) k
      ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$""",
    # A member's update shows in audiences only if it moved what they read of a member. The
    # rows that changed are what EXCEPT leaves, in both directions: a join of the transition
    # tables (which have no statistics) ran as a nested loop, 10 s for 10,000 rows.
    """
CREATE FUNCTION vestnik_reads_member_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO read_version_bumps (workspace_id, kind)
    SELECT DISTINCT workspace_id, 'members' FROM new_rows ON CONFLICT DO NOTHING;
  INSERT INTO read_version_bumps (workspace_id, kind)
    SELECT DISTINCT workspace_id, 'audience' FROM (
      (SELECT id, workspace_id, name, status FROM new_rows
       EXCEPT SELECT id, workspace_id, name, status FROM old_rows)
      UNION ALL
      (SELECT id, workspace_id, name, status FROM old_rows
       EXCEPT SELECT id, workspace_id, name, status FROM new_rows)
    ) moved
    ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$""",
    # At commit, the first note's trigger renews every stamp the transaction noted (none for a
    # workspace deleted meanwhile) and takes the notes away, so the later notes' triggers find
    # nothing to do. All in one order (workspace, kind): two transactions committing at once,
    # one having changed events before members and the other members before events, would
    # otherwise each hold the stamp the other waits for.
    """
CREATE FUNCTION vestnik_reads_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  WITH noted AS (DELETE FROM read_version_bumps WHERE xid = NEW.xid RETURNING workspace_id, kind)
  INSERT INTO read_versions (workspace_id, kind, stamp)
    SELECT n.workspace_id, n.kind, gen_random_uuid() FROM noted n
      JOIN workspaces w ON w.id = n.workspace_id
     ORDER BY n.workspace_id, n.kind
    ON CONFLICT (workspace_id, kind) DO UPDATE SET stamp = excluded.stamp;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION vestnik_reads_begin() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO read_versions (workspace_id, kind, stamp)
    SELECT id, k, gen_random_uuid() FROM new_rows, unnest(ARRAY['members', 'audience', 'events']) k;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION vestnik_reads_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM read_versions WHERE workspace_id IN (SELECT id FROM old_rows);
  RETURN NULL;
END $$""",
]


def _noted(table: str, event: str) -> str:
    rows = "OLD TABLE AS old_rows" if event == "DELETE" else "NEW TABLE AS new_rows"
    call = "vestnik_reads_noted(" + ", ".join(f"'{kind}'" for kind in KINDS[table]) + ")"
    if table == "members" and event == "UPDATE":
        rows, call = "NEW TABLE AS new_rows OLD TABLE AS old_rows", "vestnik_reads_member_updated()"
    return (
        f"CREATE TRIGGER reads_{table}_{event.lower()} AFTER {event} ON {table} "
        f"REFERENCING {rows} FOR EACH STATEMENT EXECUTE FUNCTION {call}"
    )


TRIGGERS = [
    *(_noted(table, event) for table in KINDS for event in ("INSERT", "UPDATE", "DELETE")),
    "CREATE CONSTRAINT TRIGGER reads_bump_at_commit AFTER INSERT ON read_version_bumps "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION vestnik_reads_bump()",
    "CREATE TRIGGER reads_workspaces_insert AFTER INSERT ON workspaces "
    "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION vestnik_reads_begin()",
    "CREATE TRIGGER reads_workspaces_delete AFTER DELETE ON workspaces "
    "REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION vestnik_reads_forget()",
]


def upgrade() -> None:
    # No foreign key to workspaces: checking one would take a share lock on the workspace row at
    # commit, which an event change holds FOR UPDATE (0020) while it may wait for this writer.
    op.create_table(
        "read_versions",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("stamp", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "kind", name=op.f("pk_read_versions")),
    )
    # Unlogged: a note lives from a change to its transaction's commit; a crash loses only notes
    # of transactions that did not commit.
    op.create_table(
        "read_version_bumps",
        sa.Column(
            "xid",
            sa.BigInteger(),
            server_default=sa.text("pg_current_xact_id()::text::bigint"),
            nullable=False,
        ),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.PrimaryKeyConstraint("xid", "workspace_id", "kind", name=op.f("pk_read_version_bumps")),
        prefixes=["UNLOGGED"],
    )
    op.execute(
        "INSERT INTO read_versions (workspace_id, kind, stamp) SELECT id, k, gen_random_uuid() "
        "FROM workspaces, unnest(ARRAY['members', 'audience', 'events']) k"
    )
    for statement in [*FUNCTIONS, *TRIGGERS]:
        op.execute(statement)


def downgrade() -> None:
    for trigger in TRIGGERS:
        words = trigger.split()
        name = words[3] if words[1] == "CONSTRAINT" else words[2]
        op.execute(f"DROP TRIGGER {name} ON {words[words.index('ON') + 1]}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function.split()[2]}")
    op.drop_table("read_version_bumps")
    op.drop_table("read_versions")
