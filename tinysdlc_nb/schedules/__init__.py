"""Scheduled runs of notebooks, gates and runbooks, and the scheduler process."""
