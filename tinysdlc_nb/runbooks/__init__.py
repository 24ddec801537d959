"""Runbooks: Markdown procedures compiled to notebooks whose steps leave records."""
