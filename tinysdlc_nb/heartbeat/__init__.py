"""The heartbeat: a periodic look at endpoints, incidents, sign-offs, the queue and gates."""
