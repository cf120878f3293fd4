"""Alembic migrations. Run them with ``vestnik migrate`` (``vestnik run`` does it for you)."""
