"""Lint checks of a runbook: sections, commands, declared variables, checks and secrets."""

from __future__ import annotations

import re

from .. import secret_patterns
from .frontmatter import Problem
from .model import Phase, Runbook, Step
from .shellvars import RUNNER_VARIABLES, SHELL_VARIABLES, assigned_variables, referenced_variables

PLACEHOLDER = "[fill in"
NO_ROLLBACK = "no_rollback"
_CHECK_FORMS = {
    "gate": re.compile(r"^gate\s+(g3|g4)$", re.IGNORECASE),
    "command": re.compile(r"^command\s+[A-Za-z0-9._+-]+$"),
    "env": re.compile(r"^env\s+[A-Za-z_][A-Za-z0-9_]*$"),
}


def lint_runbook(runbook: Runbook) -> list[Problem]:
    """Return the problems of a parsed runbook, in line order."""
    problems: list[Problem] = []
    _check_sections(runbook, problems)
    _check_prerequisites(runbook, problems)

    declared = {parameter.variable for parameter in runbook.parameters.values()}
    for phase in Phase:
        if phase is Phase.VERIFY_AFTER_ROLLBACK:
            continue
        for step in runbook.phase_steps(phase):
            _check_step(step, declared, problems)

    _check_placeholders(runbook, problems)
    _check_written_secrets(runbook, problems)
    return sorted(problems, key=lambda problem: problem.line)


def _check_sections(runbook: Runbook, problems: list[Problem]) -> None:
    sections = runbook.sections
    end = len(runbook.source.splitlines()) or 1

    if "steps" not in sections:
        problems.append(Problem(end, "error", "no '## Steps' section; add the numbered steps "
                                "with one ```bash block each"))
    elif not runbook.steps:
        problems.append(Problem(sections["steps"], "error", "the Steps section has no "
                                "numbered items"))

    if runbook.read_only:
        if runbook.rollback:
            problems.append(Problem(sections.get("rollback", 1), "warning", "a read_only "
                                    "runbook has a Rollback section; it runs when a step "
                                    "fails, so check that read_only is still true"))
    elif "rollback" not in sections:
        problems.append(Problem(end, "error", "no '## Rollback' section; write the steps that "
                                "undo this runbook (or set 'read_only: true' when it changes "
                                "nothing)", code=NO_ROLLBACK))
    elif not runbook.rollback:
        problems.append(Problem(sections["rollback"], "error", "the Rollback section has no "
                                "numbered items"))

    if "monitoring" not in sections:
        problems.append(Problem(end, "error", "no '## Monitoring' section; say what to watch, "
                                "what healthy looks like and whom to call"))
    if "verification" not in sections and not runbook.read_only:
        problems.append(Problem(end, "warning", "no '## Verification' section; a rollback "
                                "rehearsal needs one to check health after the steps and "
                                "after the rollback"))
    if "prerequisites" not in sections:
        problems.append(Problem(end, "warning", "no '## Prerequisites' section"))


def _check_prerequisites(runbook: Runbook, problems: list[Problem]) -> None:
    for item in runbook.prerequisites:
        if not item.text:
            problems.append(Problem(item.line, "error", "an empty prerequisite item"))
        if not item.check:
            continue
        kind = item.check.split()[0].lower()
        if not _CHECK_FORMS[kind].match(item.check):
            problems.append(Problem(item.line, "error", f"check `{item.check}` is invalid; "
                                    f"write `gate g3`, `gate g4`, `command NAME` or "
                                    f"`env NAME`"))
        elif kind == "gate" and "version" not in runbook.parameters:
            problems.append(Problem(item.line, "error", f"check `{item.check}` needs the "
                                    f"version it is about; declare a 'version' parameter"))


def _check_step(step: Step, declared: set[str], problems: list[Problem]) -> None:
    where = f"{step.phase.value} {step.number}"
    if step.command is None:
        problems.append(Problem(step.line, "error", f"{where} ('{step.title}') has no command; "
                                f"add a ```bash block, or move the text out of the numbered "
                                f"list"))
        return
    if not step.command.strip():
        problems.append(Problem(step.command_line, "error", f"{where} has an empty bash "
                                f"block"))
        return

    known = declared | SHELL_VARIABLES | RUNNER_VARIABLES | assigned_variables(step.command)
    reported: set[str] = set()
    for reference in referenced_variables(step.command):
        if reference.optional or reference.name in known or reference.name in reported:
            continue
        reported.add(reference.name)
        lower = reference.name.lower()
        hint = (f"declare a parameter '{lower}' in the front matter"
                if re.match(r"^[A-Z][A-Z0-9_]*$", reference.name)
                else f"parameters reach commands in upper case (${reference.name.upper()})")
        problems.append(Problem(step.command_line + reference.offset, "error",
                                f"{where} uses ${reference.name}, which is not declared; "
                                f"{hint}, or write ${{{reference.name}:-}} for an optional "
                                f"environment variable"))


def _check_placeholders(runbook: Runbook, problems: list[Problem]) -> None:
    for number, line in enumerate(runbook.source.splitlines(), start=1):
        if PLACEHOLDER in line:
            problems.append(Problem(number, "error", "a placeholder from `runbook new` is "
                                    "still here; replace it with the real text or command"))


def _check_written_secrets(runbook: Runbook, problems: list[Problem]) -> None:
    """Report credentials written into the runbook, which every copy would then carry."""
    for number, line in enumerate(runbook.source.splitlines(), start=1):
        for found in secret_patterns.find_secrets(line):
            problems.append(Problem(number, "error", f"a secret ({found.pattern.name}) is "
                                    f"written in the runbook; declare a parameter with "
                                    f"'secret: true' and read it from the environment"))
