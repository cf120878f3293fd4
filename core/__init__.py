"""vestnik's domain layer: settings, database, models and services. No HTTP, no aiogram here."""
