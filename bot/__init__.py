"""The Telegram bot (aiogram): routers, callbacks and deep links over core/. Not yet available."""
