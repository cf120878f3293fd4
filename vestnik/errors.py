"""What stops a `vestnik` command with one line on stderr; apart from the modules that raise them so
every command can catch them without loading those (the supervisor, alembic)."""


class StartupError(Exception):
    """`vestnik run` cannot start: a busy port, a part that exited or never answered."""


class SchemaOutdated(Exception):
    """The database's schema is older than this vestnik: `vestnik migrate` first."""


class MigrationFailed(Exception):
    """Postgres refused a migration; the schema is as it was (they run in one transaction)."""
