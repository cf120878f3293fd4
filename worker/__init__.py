"""The taskiq broker, its tasks and the scheduler loop over core/, sending through aiogram and the
other channels."""

from bot.telegram_schemas import defer_telegram_schemas

defer_telegram_schemas()  # before worker.channels imports aiogram
