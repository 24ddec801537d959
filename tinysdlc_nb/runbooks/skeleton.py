"""The file ``tinysdlc-nb runbook new`` writes: the runbook template with placeholders."""

from __future__ import annotations

from ..errors import UsageError
from .frontmatter import NAME_PATTERN
from .lint import PLACEHOLDER

SKELETON = """---
name: {name}
description: "{p}: one sentence on what this runbook does]"
service: {name}
rollback_target_s: 300
parameters:
  version: {{type: str, required: true, description: Release version to act on}}
  environment: {{type: str, default: staging, choices: [staging, production]}}
---

# {title}

{p}: when to use this runbook and what it changes]

## Prerequisites
- [ ] G3 Ship Ready is confirmed for this version: `gate g3`
- [ ] bash is available: `command bash`
- [ ] {p}: access or approvals a person must confirm]

## Steps
1. {p}: the first change, in one sentence]
   ```bash
   echo "{p}: command that makes the change for $VERSION on $ENVIRONMENT]"
   ```
2. {p}: the next change]
   Timeout: 60s
   ```bash
   echo "{p}: command]"
   ```
   Expect: exit 0

## Verification
1. {p}: how to tell the service is healthy]
   ```bash
   echo "{p}: a health check such as: tinysdlc-nb probe http://127.0.0.1:8080/health --wait 30]"
   ```

## Rollback
1. {p}: the step that undoes the change]
   ```bash
   echo "{p}: command that restores the previous version]"
   ```

## Monitoring
- What to watch: {p}: metrics, logs and alerts]
- Success criteria: {p}: what healthy looks like, with numbers]
- Escalation: {p}: who to call, and when]
"""


def skeleton(name: str) -> str:
    """Return a new runbook named ``name`` in the template; lint flags every placeholder."""
    if not NAME_PATTERN.match(name):
        raise UsageError(f"runbook name '{name}' is invalid; use lower-case letters, digits, "
                         f"'.', '_' and '-', such as deploy-web")
    title = name.replace("-", " ").replace("_", " ").capitalize()
    return SKELETON.format(name=name, title=title, p=PLACEHOLDER)
