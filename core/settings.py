"""The one place vestnik reads its configuration from (environment variables prefixed VESTNIK_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class SettingsError(Exception):
    """A setting has a value vestnik cannot start with; the message names the variable."""


class Settings(BaseSettings):
    # An empty variable is an unset one: docker-compose.yml passes `${VESTNIK_MAX_TOKEN:-}`, and
    # an empty token must not start a bot that Telegram or MAX would refuse.
    model_config = SettingsConfigDict(
        env_prefix="VESTNIK_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
    )

    # Plain DATABASE_URL / REDIS_URL are honoured too: that is what hosting platforms set.
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("VESTNIK_DATABASE_URL", "DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("VESTNIK_REDIS_URL", "REDIS_URL")
    )
    data_dir: Path = Path(".vestnik")
    base_url: AnyHttpUrl | None = Field(
        default=None, description="Public URL for links; unset: the host and port served"
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    emulator_port: int = Field(
        default=8081, ge=1, le=65535, description="Where `vestnik run` serves the Bot API emulator"
    )
    telegram_token: SecretStr | None = None
    secret_key: SecretStr | None = Field(
        default=None, description="Signs answer buttons; made and kept in the data dir if unset"
    )
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    bot_webhook_url: AnyHttpUrl | None = Field(
        default=None,
        description="Webhook mode: Telegram posts updates to this URL, served by the API",
    )
    bot_webhook_secret: SecretStr | None = Field(
        default=None, description="Checked on every webhook call; derived from the secret key"
    )
    webapp_dev_login: bool = Field(
        default=False, description="Allow /app/dev-login (sign in as anyone): development only"
    )
    telegram_bot_username: str | None = Field(
        default=None, description="The bot's @username, for invite links (t.me/<username>)"
    )
    max_emulator_port: int = Field(
        default=8082, ge=1, le=65535, description="Where `vestnik run` serves the MAX emulator"
    )
    max_token: SecretStr | None = Field(
        default=None, description="A MAX bot's token: the MAX bot and channel run beside Telegram's"
    )
    max_api_url: AnyHttpUrl = AnyHttpUrl("https://platform-api2.max.ru")
    max_bot_username: str | None = Field(
        default=None, description="The MAX bot's name, for invite links (max.ru/<name>)"
    )
    max_webhook_url: AnyHttpUrl | None = Field(
        default=None,
        description="MAX webhook mode: MAX posts updates to this URL (…/max/webhook), served by "
        "the API; unset: `vestnik bot` long-polls",
    )
    max_rate_per_second: float = Field(
        default=30.0, gt=0, description="Per MAX bot (MAX: ~30; planned a little under it)"
    )
    max_chat_rate_per_second: float = Field(default=2.0, gt=0, description="Per MAX chat (MAX: 2)")
    default_timezone: str = "UTC"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_pool_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a request waits for a free database connection; past it the API "
        "answers 503 busy",
    )
    api_statement_timeout_seconds: float = Field(
        default=30.0,
        ge=0,
        le=3600,
        description="The longest one database statement of an API or Mini App request may run; "
        "past it the request is answered 503 and changes nothing (0: no limit)",
    )
    api_workers: int = Field(
        default=1,
        ge=1,
        le=64,
        description="`vestnik api` processes (production: one per core; needs an external "
        "Postgres, VESTNIK_DATABASE_URL)",
    )
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    read_cache_mb: int = Field(
        default=32,
        ge=0,
        le=4096,
        description="Per API process: answers to member lists, event lists and audience previews "
        "kept by the stamp of the data they show (0: none kept)",
    )
    audience_index_mb: int = Field(
        default=64,
        ge=0,
        le=4096,
        description="Per API process: workspaces' audience indexes (who belongs to what, by "
        "stamp) that answer a lead's previews in milliseconds (0: every preview from Postgres)",
    )
    job_lease_seconds: int = Field(
        default=300, ge=1, description="How long a claimed job is held before it returns"
    )
    scheduler_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description="The scheduler's fallback poll: it wakes on Postgres NOTIFY when a job becomes "
        "due soon, and at the next due time",
    )
    worker_concurrent_jobs: int = Field(
        default=50,
        ge=1,
        le=1000,
        description="Jobs one worker sends at once; its Redis pool is sized from this",
    )
    worker_helpers: int = Field(
        default=3,
        ge=0,
        le=64,
        description="How many other workers a big fan-out asks to help send it (0: none)",
    )
    worker_help_above: int = Field(
        default=2000, ge=1, description="Audience size from which a fan-out asks for help"
    )
    redis_max_connections: int | None = Field(
        default=None,
        ge=1,
        description="A worker's Redis connections; by default jobs × 5 + 8. When all are busy a "
        "call waits for one, it never fails",
    )
    telegram_rate_per_second: float = Field(default=30.0, gt=0, description="Per bot")
    telegram_chat_rate_per_second: float = Field(default=1.0, gt=0, description="Per private chat")
    telegram_group_rate_per_minute: float = Field(default=20.0, gt=0, description="Per group chat")
    smtp_host: str | None = Field(default=None, description="Sends email when set")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "vestnik <vestnik@localhost>"
    smtp_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+asyncpg://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_only(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from core.timezones import check_timezone

        return check_timezone(value)

    @property
    def signing_key(self) -> bytes:
        from core.secrets import signing_key

        configured = self.secret_key.get_secret_value() if self.secret_key else None
        return signing_key(configured, self.data_dir)

    @property
    def max_webhook_secret(self) -> str:
        """What MAX must send in X-Max-Bot-Api-Secret (derived from the secret key)."""
        import hashlib
        import hmac

        return hmac.new(self.signing_key, b"max webhook", hashlib.sha256).hexdigest()

    @property
    def webhook_secret(self) -> str:
        """What Telegram must send in X-Telegram-Bot-Api-Secret-Token (1-256 of A-Z a-z 0-9 _ -)."""
        if self.bot_webhook_secret is not None:
            return self.bot_webhook_secret.get_secret_value()
        import hashlib
        import hmac

        return hmac.new(self.signing_key, b"telegram webhook", hashlib.sha256).hexdigest()

    @property
    def public_url(self) -> str:
        """VESTNIK_BASE_URL without a trailing slash, for building links; unset, the address
        vestnik serves on (a wildcard address is shown as localhost)."""
        if self.base_url is not None:
            return str(self.base_url).rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def embedded(self) -> bool:
        """True when vestnik must start its own Postgres and/or Redis."""
        return self.database_url is None or self.redis_url is None


def _env_name(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    return name if name.isupper() else f"VESTNIK_{name.upper()}"


def load_settings() -> Settings:
    """Read the settings, turning a validation failure into one line that names the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SettingsError(f"bad setting {_env_name(first['loc'])}: {first['msg']}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
