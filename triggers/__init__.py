"""Triggers: match committed inbox entries and start flows."""
