"""The bot: aiogram routers, callbacks and deep links over core/, for Telegram and (through
bot/max_adapter) MAX."""
