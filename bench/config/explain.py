"""Hydra's and OmegaConf's errors as one line naming the key, the value and the fix (a ConfigError)."""

from __future__ import annotations

import re

from bench.errors import ConfigError, did_you_mean

__all__ = ["explain"]


def explain(exc: BaseException, overrides: list[str]) -> ConfigError:
    """Hydra's and OmegaConf's errors as one line naming key, value and fix."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    if isinstance(exc, MissingConfigException):
        missing = exc.missing_cfg_file or ""
        group, _, option = missing.rpartition("/")
        options = ", ".join(exc.options or []) or "see `bench run --help`"
        if group:
            return ConfigError(group, option, f"use one of {options} (see `bench list`)",
                               f"is not a known {group}{did_you_mean(option, exc.options or [])}")
        return ConfigError("", "", "check the --config-name", str(exc).splitlines()[0])
    if isinstance(exc, OverrideParseException):
        return ConfigError("", "", "write overrides as key=value, e.g. batch_size=8",
                           f"cannot parse {exc.override!r}")
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ValidationError):
        key = cause.full_key or cause.key or "?"
        msg = str(cause.msg).splitlines()[0]
        return ConfigError(str(key), cause.value, f"give a value of the right type ({msg})", "has the wrong type")
    if isinstance(cause, (ConfigKeyError, OmegaConfBaseException)) and "not in struct" in str(cause).lower() \
            or "Could not override" in str(exc) or "Could not append" in str(exc):
        key = getattr(cause, "full_key", None) or _first_key(str(exc))
        return ConfigError(str(key), _value_of(str(key), overrides),
                           "check the spelling; `bench run --help` lists every key",
                           f"is not a config key{did_you_mean(str(key), _known_keys(str(key), overrides))}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError("", "", "see `bench run --help`", first)


def _known_keys(key: str, overrides: list[str]) -> list[str]:
    """The keys `bench run --help` lists, for a mistyped key's "did you mean"."""
    from bench.config.help import field_names

    return field_names()


def _first_key(text: str) -> str:
    match = re.search(r"'([^']+)'", text)
    return match.group(1) if match else "?"


def _value_of(key: str, overrides: list[str]) -> str:
    for override in overrides:
        name, _, value = override.lstrip("+~").partition("=")
        if name == key:
            return value
    return ""
