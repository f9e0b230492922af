"""Helpers every layer may use: URLs, redaction, fork safety, files."""
