"""ICS calendar feeds. Not yet available."""
