"""Team messaging: ``[@agent: message]`` hand-offs carried through a durable queue."""
