"""Where Telegram posts updates in webhook mode, and the header that proves it is Telegram: apart
from bot/webhook.py so the API can route them without importing aiogram unless webhook mode is on."""

PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
