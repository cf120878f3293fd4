"""Bearer secrets (API tokens, feed links): random, shown once, stored as SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

SECRET_BYTES = 32
SECRET_CHARS = 43  # len(token_urlsafe(32))


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(SECRET_BYTES)


def digest(raw: str) -> str:
    """What we store and look up by. The secrets are random, so a plain SHA-256 is enough."""
    return hashlib.sha256(raw.encode()).hexdigest()


def looks_like(raw: str, prefix: str) -> bool:
    return raw.startswith(prefix) and len(raw) == len(prefix) + SECRET_CHARS


def _kept(path: Path, make: str) -> str:
    """A secret made once and kept in the data dir, readable by its owner only."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(make)
    return path.read_text().strip()


def emulator_token(data_dir: Path) -> str:
    """The bot token `vestnik run` gives its local emulator: random per data dir, so Mini App
    sign-ins signed with it cannot be forged by anyone who knows vestnik's source."""
    return _kept(data_dir / "emulator.token", f"1000000:{secrets.token_urlsafe(32)}")


def signing_key(configured: str | None, data_dir: Path) -> bytes:
    """The key that signs answer buttons: VESTNIK_SECRET_KEY, or one made once and kept in the
    data dir (so buttons sent before a restart still work after it)."""
    if configured:
        return configured.encode()
    return _kept(data_dir / "secret.key", secrets.token_urlsafe(48)).encode()
