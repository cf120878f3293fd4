"""The Mini App (Jinja2 + htmx): opened from the bot's menu button inside Telegram."""
