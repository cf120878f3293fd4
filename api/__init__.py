"""The REST API: a thin FastAPI layer that parses, authorises, calls core and serialises."""
