"""Development stand-ins for the messengers (a real HTTP server speaking their Bot API)."""
