"""The bot: aiogram routers, callbacks and deep links over core/, for Telegram and (through
bot/max_adapter) MAX."""

from bot.telegram_schemas import defer_telegram_schemas

defer_telegram_schemas()  # before any module of the bot imports aiogram
