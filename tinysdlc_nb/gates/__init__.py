"""Release gates: the check model, tier policy, checks, runner and report writers."""
