"""Development stand-ins for the messengers (a real HTTP server speaking their Bot API)."""

# The emulators' bots, by the names `vestnik run` gives the bot and the links it writes. Here, not
# in the emulators' modules, so `vestnik run` reads them without importing an HTTP server.
TELEGRAM_BOT_USERNAME = "vestnik_emulator_bot"
MAX_BOT_USERNAME = "vestnik_max_bot"
