"""audience parts: a stamp per group, tag and role of a workspace, and a numbered log of its
members that joined, left, or whose name or status moved, both kept by the database as a
transaction that changed them commits

An API process holds a workspace's audience index at one audience stamp (``core.audience.index``);
any change to who belongs to what moves that stamp, and the index was read whole again (hundreds
of milliseconds at 100,000 members) while previews went back to Postgres. With a stamp per part
and the log of members changed, an index is brought to the new audience stamp by reading only
the parts whose stamps moved (the links of the one group a lead just changed) and the members
the log names since the index was read: a few milliseconds.

A part without a row has not changed since this migration; a row, once made, stays (for a
deleted group, a few bytes). A workspace's members are numbered in ``audience_rosters.seq``, one
number per member changed in a commit, and ``audience_roster_changes`` keeps the last
``ROSTER_KEPT`` of them: an index read before those is read whole.

Kept as 0026 renews the audience stamp, in the same commit-time trigger and after it: noted by
statement triggers (``audience_part_bumps``, ``audience_roster_bumps``; once per part, or member,
and transaction), written at commit in one order. Every change noted here also renews the
audience stamp, whose row the trigger has locked by then, so a workspace's commits of such
changes take their numbers one after another, a snapshot that sees an audience stamp sees
exactly the parts and numbers written with it, and two commits never wait on each other's parts.

Revision ID: 0027
Revises: 0026
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each link table, by the column naming the part its rows belong to.
LINKS = {"member_groups": "group_id", "member_tags": "tag_id", "member_roles": "role_id"}

_NOTE = (
    "INSERT INTO audience_part_bumps (workspace_id, owner) SELECT DISTINCT workspace_id, {owner}"
    " FROM {rows} ON CONFLICT DO NOTHING;"
)

ROSTER_KEPT = 1000

FUNCTIONS = [
    *(
        f"""
CREATE FUNCTION vestnik_parts_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    {_NOTE.format(owner=owner, rows="old_rows")}
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') THEN
    {_NOTE.format(owner=owner, rows="new_rows")}
  END IF;
  RETURN NULL;
END $$"""
        for table, owner in LINKS.items()
    ),
    # Members that joined or left (those whose name or status moved are noted by
    # vestnik_reads_member_updated, below, which finds them for the audience stamp already).
    """
CREATE FUNCTION vestnik_parts_members() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO audience_roster_bumps (workspace_id, member_id)
      SELECT workspace_id, id FROM old_rows ON CONFLICT DO NOTHING;
  ELSE
    INSERT INTO audience_roster_bumps (workspace_id, member_id)
      SELECT workspace_id, id FROM new_rows ON CONFLICT DO NOTHING;
  END IF;
  RETURN NULL;
END $$""",
    """
CREATE FUNCTION vestnik_parts_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM audience_parts WHERE workspace_id IN (SELECT id FROM old_rows);
  DELETE FROM audience_rosters WHERE workspace_id IN (SELECT id FROM old_rows);
  DELETE FROM audience_roster_changes WHERE workspace_id IN (SELECT id FROM old_rows);
  RETURN NULL;
END $$""",
]

# The members an update moved in what audiences read of them (their name or status): rows that
# EXCEPT leaves, in both directions (0026 says why not a join).
_MOVED = """(
        (SELECT id, workspace_id, name, status FROM new_rows
         EXCEPT SELECT id, workspace_id, name, status FROM old_rows)
        UNION ALL
        (SELECT id, workspace_id, name, status FROM old_rows
         EXCEPT SELECT id, workspace_id, name, status FROM new_rows)
      ) moved"""
_MEMBERS_NOTED = """
  INSERT INTO read_version_bumps (workspace_id, kind)
    SELECT DISTINCT workspace_id, 'members' FROM new_rows ON CONFLICT DO NOTHING;"""
# 0026's function as it was (put back on downgrade), and as it is now: the members moved found
# once, noted both for the audience stamp and in the members' log (a second trigger finding them again would run the
# EXCEPTs twice for every member update, the bot's marking people active among them).
MEMBER_UPDATED_0026 = f"""
CREATE OR REPLACE FUNCTION vestnik_reads_member_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{_MEMBERS_NOTED}
  INSERT INTO read_version_bumps (workspace_id, kind)
    SELECT DISTINCT workspace_id, 'audience' FROM {_MOVED}
    ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$"""
MEMBER_UPDATED = f"""
CREATE OR REPLACE FUNCTION vestnik_reads_member_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{_MEMBERS_NOTED}
  WITH changed AS (SELECT DISTINCT workspace_id, id FROM {_MOVED}),
  logged AS (
    INSERT INTO audience_roster_bumps (workspace_id, member_id)
      SELECT workspace_id, id FROM changed ON CONFLICT DO NOTHING
  )
  INSERT INTO read_version_bumps (workspace_id, kind)
    SELECT DISTINCT workspace_id, 'audience' FROM changed ON CONFLICT DO NOTHING;
  RETURN NULL;
END $$"""

# 0026's commit-time renewal, then the parts' (each change to a part is also noted as a change
# to the audience, so this runs in every transaction that noted a part). One function, so every
# transaction takes the stamps first and the parts after, each in one order.
_RENEW_STAMPS = """
  WITH noted AS (DELETE FROM read_version_bumps WHERE xid = NEW.xid RETURNING workspace_id, kind)
  INSERT INTO read_versions (workspace_id, kind, stamp)
    SELECT n.workspace_id, n.kind, gen_random_uuid() FROM noted n
      JOIN workspaces w ON w.id = n.workspace_id
     ORDER BY n.workspace_id, n.kind
    ON CONFLICT (workspace_id, kind) DO UPDATE SET stamp = excluded.stamp;"""
_RENEW_PARTS = """
  WITH noted AS (DELETE FROM audience_part_bumps WHERE xid = NEW.xid RETURNING workspace_id, owner)
  INSERT INTO audience_parts (workspace_id, owner, stamp)
    SELECT n.workspace_id, n.owner, gen_random_uuid() FROM noted n
      JOIN workspaces w ON w.id = n.workspace_id
     ORDER BY n.workspace_id, n.owner
    ON CONFLICT (workspace_id, owner) DO UPDATE SET stamp = excluded.stamp;"""


# Each workspace's members changed, numbered after the last number given (in id order), and the
# log cut to its last ROSTER_KEPT (a commit that changed more, an import, logs only its last ones:
# an index from before it is read whole in any case).
_RENEW_ROSTERS = f"""
  FOR changed IN
    WITH noted AS (
      DELETE FROM audience_roster_bumps WHERE xid = NEW.xid RETURNING workspace_id, member_id
    )
    SELECT n.workspace_id, array_agg(n.member_id ORDER BY n.member_id) AS members FROM noted n
      JOIN workspaces w ON w.id = n.workspace_id
     GROUP BY n.workspace_id ORDER BY n.workspace_id
  LOOP
    INSERT INTO audience_rosters AS r (workspace_id, seq)
      VALUES (changed.workspace_id, cardinality(changed.members))
      ON CONFLICT (workspace_id) DO UPDATE SET seq = r.seq + excluded.seq
      RETURNING seq INTO upto;
    INSERT INTO audience_roster_changes (workspace_id, seq, member_id)
      SELECT changed.workspace_id, upto - cardinality(changed.members) + u.n, u.member_id
        FROM unnest(changed.members) WITH ORDINALITY AS u(member_id, n)
       WHERE u.n > cardinality(changed.members) - {ROSTER_KEPT};
    DELETE FROM audience_roster_changes
     WHERE workspace_id = changed.workspace_id AND seq <= upto - {ROSTER_KEPT};
  END LOOP;"""


def _bump(*renewals: str) -> str:
    declare = "DECLARE changed record; upto bigint;\n" if _RENEW_ROSTERS in renewals else ""
    return (
        "CREATE OR REPLACE FUNCTION vestnik_reads_bump() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        + declare
        + "BEGIN"
        + "".join(renewals)
        + "\n  RETURN NULL;\nEND $$"
    )


def _trigger(table: str, event: str, function: str) -> str:
    rows = {
        "INSERT": "NEW TABLE AS new_rows",
        "DELETE": "OLD TABLE AS old_rows",
        "UPDATE": "NEW TABLE AS new_rows OLD TABLE AS old_rows",
    }[event]
    return (
        f"CREATE TRIGGER parts_{table}_{event.lower()} AFTER {event} ON {table} "
        f"REFERENCING {rows} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
    )


TRIGGERS = [
    *(
        _trigger(table, event, f"vestnik_parts_{table}")
        for table in LINKS
        for event in ("INSERT", "UPDATE", "DELETE")
    ),
    *(_trigger("members", event, "vestnik_parts_members") for event in ("INSERT", "DELETE")),
    _trigger("workspaces", "DELETE", "vestnik_parts_forget"),
]


def _notes(table: str, noted: str) -> None:
    """A table of a transaction's notes (by ``noted``), gone as it commits. Unlogged, as 0026's:
    a crash loses only notes of transactions that did not commit."""
    op.create_table(
        table,
        sa.Column(
            "xid",
            sa.BigInteger(),
            server_default=sa.text("pg_current_xact_id()::text::bigint"),
            nullable=False,
        ),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column(noted, sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("xid", "workspace_id", noted, name=op.f(f"pk_{table}")),
        prefixes=["UNLOGGED"],
    )


def upgrade() -> None:
    # No foreign key to workspaces, as read_versions has none (0026 says why).
    op.create_table(
        "audience_parts",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("owner", sa.Uuid(), nullable=False),
        sa.Column("stamp", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "owner", name=op.f("pk_audience_parts")),
    )
    _notes("audience_part_bumps", "owner")
    op.create_table(
        "audience_rosters",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_audience_rosters")),
    )
    op.create_table(
        "audience_roster_changes",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", "seq", name=op.f("pk_audience_roster_changes")),
    )
    _notes("audience_roster_bumps", "member_id")
    renew = _bump(_RENEW_STAMPS, _RENEW_PARTS, _RENEW_ROSTERS)
    for statement in [*FUNCTIONS, *TRIGGERS, MEMBER_UPDATED, renew]:
        op.execute(statement)


def downgrade() -> None:
    op.execute(_bump(_RENEW_STAMPS))
    op.execute(MEMBER_UPDATED_0026)
    for trigger in TRIGGERS:
        words = trigger.split()
        op.execute(f"DROP TRIGGER {words[2]} ON {words[words.index('ON') + 1]}")
    for function in FUNCTIONS:
        op.execute(f"DROP FUNCTION {function.split()[2]}")
    for table in (
        "audience_roster_bumps",
        "audience_roster_changes",
        "audience_rosters",
        "audience_part_bumps",
        "audience_parts",
    ):
        op.drop_table(table)
