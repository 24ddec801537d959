"""Runbook parameter values: typed from ``-p key=value``, checked, and turned into ``$NAME``s.

Values reach commands only through the environment, never through command text, so a
value holding shell syntax stays an inert string.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

from ..errors import UsageError
from ..scrub import MIN_PROTECTED_LENGTH
from .model import Parameter, Runbook

# Linux rejects a single environment string ("NAME=value") of 128 KiB or more
# (MAX_ARG_STRLEN), so every step would fail to start with a larger value.
MAX_ENVIRONMENT_BYTES = 128 * 1024 - 1
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


def parse_cli_parameters(runbook: Runbook, pairs: list[str]) -> dict[str, Any]:
    """Return the typed value of every non-secret parameter, from ``key=value`` strings.

    Defaults fill what is not given. Raises UsageError for an unknown, repeated, secret,
    missing or badly typed parameter, naming the value and the fix.
    """
    given: dict[str, str] = {}
    for pair in pairs:
        key, equals, raw = pair.partition("=")
        key = key.strip()
        if not equals or not key:
            raise UsageError(f"parameter '{pair}' is invalid; write -p NAME=VALUE")
        if key in given:
            raise UsageError(f"parameter '{key}' is given twice; pass it once")
        given[key] = raw

    values: dict[str, Any] = {}
    for key, raw in given.items():
        parameter = _declared(runbook, key)
        if parameter.secret:
            raise UsageError(f"parameter '{key}' is a secret; set the environment variable "
                             f"{parameter.source_variable} instead of passing it with -p")
        values[key] = coerce_value(parameter, raw)
    return complete_values(runbook, values)


def complete_values(runbook: Runbook, values: Mapping[str, Any]) -> dict[str, Any]:
    """Check typed ``values`` (as a notebook passes them) and fill in the defaults."""
    complete: dict[str, Any] = {}
    for name, parameter in runbook.parameters.items():
        if parameter.secret:
            continue
        value = values.get(name)
        if parameter.required and isinstance(value, str) and not value.strip():
            raise UsageError(f"parameter '{name}' is required and empty; pass a value with "
                             f"-p {name}=VALUE")
        if value is None:
            if parameter.required:
                raise UsageError(f"parameter '{name}' is required; pass -p {name}=VALUE"
                                 + (f" ({parameter.description})" if parameter.description
                                    else ""))
            value = parameter.default
        complete[name] = coerce_value(parameter, value) if value is not None else None

    unknown = sorted(set(values) - set(runbook.parameters))
    if unknown:
        _declared(runbook, unknown[0])
    return complete


def read_secrets(runbook: Runbook, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return each secret parameter's value, read from its environment variable."""
    environ = os.environ if environ is None else environ
    secrets: dict[str, str] = {}
    for name, parameter in runbook.parameters.items():
        if not parameter.secret:
            continue
        value = environ.get(parameter.source_variable, "")
        if not value and parameter.required:
            raise UsageError(f"secret parameter '{name}' is missing; set the environment "
                             f"variable {parameter.source_variable}")
        if value and len(value) < MIN_PROTECTED_LENGTH:
            raise UsageError(f"secret parameter '{name}' (${parameter.source_variable}) is "
                             f"{len(value)} characters long; values under "
                             f"{MIN_PROTECTED_LENGTH} characters cannot be redacted without "
                             f"garbling the output, so use a longer secret")
        secrets[name] = value
    return secrets


def coerce_value(parameter: Parameter, value: Any) -> Any:
    """Return ``value`` as the parameter's type; strings are read as the CLI writes them."""
    converted = _convert(parameter, value)
    if isinstance(converted, str) and "\x00" in converted:
        raise UsageError(f"parameter '{parameter.name}' contains a NUL character, which no "
                         f"environment variable can hold; remove it")
    size = len(parameter.variable) + 1 + len(as_environment_text(converted).encode("utf-8"))
    if size > MAX_ENVIRONMENT_BYTES:
        raise UsageError(f"parameter '{parameter.name}' is {size} bytes long, over the "
                         f"{MAX_ENVIRONMENT_BYTES} bytes an environment variable can hold; "
                         f"pass the path of a file that contains it instead")
    if parameter.choices is not None and converted not in parameter.choices:
        allowed = ", ".join(str(choice) for choice in parameter.choices)
        raise UsageError(f"parameter '{parameter.name}' = {value!r} is invalid; expected one "
                         f"of {allowed}")
    return converted


def environment_values(runbook: Runbook, values: Mapping[str, Any],
                       secrets: Mapping[str, str]) -> dict[str, str]:
    """Return the ``$NAME`` strings of every parameter: lists one item per line."""
    environment: dict[str, str] = {}
    for name, parameter in runbook.parameters.items():
        value = secrets.get(name, "") if parameter.secret else values.get(name)
        environment[parameter.variable] = as_environment_text(value)
    return environment


def as_environment_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "\n".join(as_environment_text(item) for item in value)
    return str(value)


def _declared(runbook: Runbook, key: str) -> Parameter:
    parameter = runbook.parameters.get(key)
    if parameter is None:
        declared = ", ".join(runbook.parameters) or "none"
        raise UsageError(f"parameter '{key}' is not declared by runbook '{runbook.name}'; "
                         f"declared parameters: {declared}")
    return parameter


def _convert(parameter: Parameter, value: Any) -> Any:
    name, kind = parameter.name, parameter.type
    problem = f"parameter '{name}' = {value!r} is invalid; expected {_describe(kind)}"

    if kind == "str":
        if isinstance(value, bool | int | float):
            raise UsageError(f"{problem}; papermill reads -p {name} {value} as a number, so "
                             f"pass text with -r {name} {value}")
        return str(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE or text in _FALSE:
            return text in _TRUE
        raise UsageError(problem)
    if kind == "int":
        if isinstance(value, bool) or isinstance(value, float):
            raise UsageError(problem)
        try:
            return int(str(value).strip(), 10)
        except ValueError:
            raise UsageError(problem) from None
    if kind == "float":
        if isinstance(value, bool):
            raise UsageError(problem)
        try:
            number = float(str(value).strip())
        except ValueError:
            raise UsageError(problem) from None
        if not math.isfinite(number):
            raise UsageError(problem)
        return number
    return _convert_list(value, problem)


def _convert_list(value: Any, problem: str) -> list[Any]:
    if isinstance(value, list | tuple):
        items = list(value)
    else:
        text = str(value).strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise UsageError(problem) from None
            if not isinstance(items, list):
                raise UsageError(problem)
        else:
            items = [item.strip() for item in text.split(",")] if text else []
    if any(not isinstance(item, str | int | float) or isinstance(item, bool) for item in items):
        raise UsageError(problem)
    if any("\n" in str(item) for item in items):
        raise UsageError(f"{problem}: an item contains a line break, but commands receive "
                         f"the items one per line")
    return items


def _describe(kind: str) -> str:
    return {"str": "a string", "int": "an integer such as 8080", "float": "a number such as "
            "2.5", "bool": "true or false", "list": "a comma-separated list or a JSON list"}[kind]
