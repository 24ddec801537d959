"""A runbook's YAML front matter: name, parameters and limits, checked with line numbers."""

from __future__ import annotations

import keyword
import math
import re
from dataclasses import dataclass
from typing import Any

import yaml

from .model import PARAMETER_TYPES, Parameter

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PARAMETER_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
TOP_KEYS = ("name", "description", "service", "environment", "rollback_target_s",
            "step_timeout_s", "read_only", "parameters")
PARAMETER_KEYS = ("type", "default", "required", "choices", "description", "secret", "env")
# Variables the shell, the dynamic loader or the step runner give a meaning of their own:
# a parameter must not replace one of them in a step's environment.
RESERVED_VARIABLES = frozenset({
    "PATH", "HOME", "SHELL", "IFS", "PWD", "OLDPWD", "USER", "LOGNAME", "ENV", "BASH_ENV",
    "CDPATH", "GLOBIGNORE", "SHELLOPTS", "BASHOPTS", "PS4", "TERM", "LANG", "TMPDIR",
    "PYTHONPATH", "PYTHONHOME", "LD_PRELOAD", "LD_LIBRARY_PATH", "POSIXLY_CORRECT",
    "PROMPT_COMMAND", "HISTFILE", "MAIL", "MAILPATH", "SHLVL", "PS1", "PS2", "PS3",
    "TZ", "LC_ALL", "LC_CTYPE", "UID", "EUID", "PPID", "HOSTNAME", "RANDOM", "SECONDS",
})
# Any name with these prefixes also belongs to the loader, bash, Python or the runner.
RESERVED_PREFIXES = ("ld_", "bash", "dyld_", "python", "runbook_", "lc_")
# Names the compiled notebook's own cells use.
NOTEBOOK_NAMES = frozenset({"rb", "open_session", "get_ipython", "print", "str", "int",
                            "float", "bool", "list", "dict"})


@dataclass(frozen=True)
class Problem:
    """One thing lint reports: where, how bad and what to do."""

    line: int
    severity: str  # error or warning
    message: str
    code: str = ""  # a stable name for problems a command option can accept

    def render(self, path: str) -> str:
        return f"{path}:{self.line}: {self.severity}: {self.message}"


@dataclass
class FrontMatter:
    """The validated front matter, plus the line each key was written on."""

    data: dict[str, Any]
    parameters: dict[str, Parameter]
    body_start: int  # 1-based line where the Markdown body starts


def split_front_matter(text: str) -> tuple[str, int] | None:
    """Return the YAML text between the ``---`` fences and the body's first line number.

    Returns None when the file does not open with a ``---`` line.
    """
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "---":
        return None

    for index, line in enumerate(lines[1:], start=1):
        if line.rstrip() in ("---", "..."):
            return "".join(lines[1:index]), index + 2
    return None


def read_front_matter(text: str, problems: list[Problem]) -> FrontMatter | None:
    """Parse and check the front matter, appending every problem found to ``problems``."""
    split = split_front_matter(text)
    if split is None:
        problems.append(Problem(1, "error", "the runbook has no front matter; start the file "
                                "with a '---' line, the YAML keys (name, description, "
                                "parameters, rollback_target_s) and a closing '---' line"))
        return None
    yaml_text, body_start = split

    try:
        node = yaml.compose(yaml_text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        problems.append(Problem(line, "error", f"front matter is not valid YAML "
                                f"({getattr(error, 'problem', None) or error})"))
        return None
    if not isinstance(data, dict):
        problems.append(Problem(2, "error", "front matter must be a YAML mapping of keys such "
                                "as name, description and parameters"))
        return None

    lines = _key_lines(node)
    _check_top(data, lines, problems)
    parameters = _read_parameters(data.get("parameters"), lines, problems)
    return FrontMatter(data, parameters, body_start)


def parameters_from_data(data: dict[str, Any]) -> dict[str, Parameter]:
    """Rebuild parameters from front matter already checked (as a compiled notebook contains it)."""
    problems: list[Problem] = []
    parameters = _read_parameters(data.get("parameters"), {}, problems)
    errors = [problem.message for problem in problems if problem.severity == "error"]
    if errors:
        raise ValueError(f"the runbook's parameters are invalid: {errors[0]}")
    return parameters


def _key_lines(node: yaml.Node | None) -> dict[str, int]:
    """Map ``key`` and ``parameters.NAME`` to the 1-based file line they are written on."""
    lines: dict[str, int] = {}
    if not isinstance(node, yaml.MappingNode):
        return lines

    for key_node, value_node in node.value:
        key = str(key_node.value)
        lines[key] = key_node.start_mark.line + 2
        if key == "parameters" and isinstance(value_node, yaml.MappingNode):
            for name_node, _ in value_node.value:
                lines[f"parameters.{name_node.value}"] = name_node.start_mark.line + 2
    return lines


def _check_top(data: dict[str, Any], lines: dict[str, int], problems: list[Problem]) -> None:
    def report(key: str, message: str, severity: str = "error") -> None:
        problems.append(Problem(lines.get(key, 2), severity, message))

    for key in data:
        if key not in TOP_KEYS:
            report(str(key), f"front matter key '{key}' is unknown; known keys: "
                   f"{', '.join(TOP_KEYS)}")

    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        report("name", "front matter has no 'name'; add a name such as 'deploy-web'")
    elif not NAME_PATTERN.match(name):
        report("name", f"name '{name}' is invalid; use lower-case letters, digits, '.', '_' "
               f"and '-'")
    if not isinstance(data.get("description"), str) or not data["description"].strip():
        report("description", "front matter has no 'description'; say in one sentence what "
               "the runbook does")

    for key in ("service", "environment"):
        if key in data and not isinstance(data[key], str):
            report(key, f"'{key}' must be a string, not {data[key]!r}")
    if "read_only" in data and not isinstance(data["read_only"], bool):
        report("read_only", f"read_only must be true or false, not {data['read_only']!r}")

    for key in ("rollback_target_s", "step_timeout_s"):
        if key in data and not _positive_number(data[key]):
            report(key, f"{key} = {data[key]!r} is invalid; expected a number of seconds "
                   f"above 0")
    if "rollback_target_s" not in data and not data.get("read_only"):
        report("name", "front matter has no 'rollback_target_s'; say within how many seconds "
               "a rollback must bring the service back")


def _read_parameters(raw: Any, lines: dict[str, int],
                     problems: list[Problem]) -> dict[str, Parameter]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem(lines.get("parameters", 2), "error", "'parameters' must be a "
                                "mapping of names to {type: ..., default: ...}"))
        return {}

    parameters: dict[str, Parameter] = {}
    for name, spec in raw.items():
        line = lines.get(f"parameters.{name}", lines.get("parameters", 2))
        parameter = _read_parameter(str(name), spec, line, problems)
        if parameter is not None:
            parameters[parameter.name] = parameter
    return parameters


def _read_parameter(name: str, spec: Any, line: int,
                    problems: list[Problem]) -> Parameter | None:
    def report(message: str) -> None:
        problems.append(Problem(line, "error", f"parameter '{name}': {message}"))

    if not PARAMETER_NAME.match(name):
        report("the name is invalid; use lower-case letters, digits and '_', starting with a "
               "letter")
        return None
    if name.upper() in RESERVED_VARIABLES or name.startswith(RESERVED_PREFIXES):
        report(f"the name would set ${name.upper()}, which the shell or the runner uses; pick "
               f"another name")
        return None
    if keyword.iskeyword(name) or keyword.issoftkeyword(name) or name in NOTEBOOK_NAMES:
        report("the name is a Python keyword or a name the compiled notebook uses; pick "
               "another name")
        return None
    if not isinstance(spec, dict):
        report("write it as a mapping such as {type: str, required: true}")
        return None

    unknown = [key for key in spec if key not in PARAMETER_KEYS]
    if unknown:
        report(f"key '{unknown[0]}' is unknown; known keys: {', '.join(PARAMETER_KEYS)}")
    kind = spec.get("type")
    if kind not in PARAMETER_TYPES:
        report(f"type {kind!r} is invalid; expected one of {', '.join(PARAMETER_TYPES)}")
        return None

    required = spec.get("required", False)
    secret = spec.get("secret", False)
    if not isinstance(required, bool) or not isinstance(secret, bool):
        report("'required' and 'secret' take true or false")
        return None
    if secret and "default" in spec:
        report("a secret has no default, because the file would then hold it; read it from "
               "its environment variable")
        return None
    if required and "default" in spec:
        report("it is both required and has a default; keep one of them")
    if not required and not secret and "default" not in spec:
        report("it has neither a default nor 'required: true'; add one of them")
    if "env" in spec and (not secret or not isinstance(spec["env"], str)
                          or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", spec["env"])):
        report("'env' names the variable a secret is read from: a variable name, and only "
               "with 'secret: true'")

    choices = spec.get("choices")
    if choices is not None and (not isinstance(choices, list) or not choices):
        report("'choices' must be a non-empty list")
        choices = None
    for choice in choices or []:
        error = default_problem(kind, choice, None)
        if error:
            report(f"choice {choice!r} is not a {kind}, so no value could match it")
            break
    default = spec.get("default")
    if default is not None:
        error = default_problem(kind, default, choices)
        if error:
            report(error)

    return Parameter(name=name, type=kind, default=default, required=required or
                     (secret and "default" not in spec and spec.get("required", True)),
                     choices=tuple(choices) if choices else None,
                     description=str(spec.get("description") or ""), secret=secret,
                     env=spec.get("env", "") if isinstance(spec.get("env"), str) else "",
                     line=line)


def default_problem(kind: str, value: Any, choices: list[Any] | None) -> str:
    """Return why ``value`` cannot be the default of a ``kind`` parameter, or ''."""
    fits = {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, int | float) and not isinstance(value, bool)
        and math.isfinite(value),
        "bool": isinstance(value, bool),
        "list": isinstance(value, list) and all(isinstance(item, str | int | float)
                                                 for item in value),
    }[kind]
    if not fits:
        return f"default {value!r} is not a {kind}"
    if choices is not None and value not in choices:
        return f"default {value!r} is not one of the choices {choices}"
    return ""


def _positive_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value) and value > 0
