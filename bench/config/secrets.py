"""Database passwords on the command line: shown nowhere. A ``results.url=`` override reaches Hydra
quoted where its grammar needs it (``?sslmode=require&...`` typed unquoted) and with its password
masked, so that nothing Hydra prints or writes (--cfg, --help, --info, multirun.yaml, its errors) holds
the password; the URL given goes back into the typed config (``with_url``). ``mask_passwords`` masks
every URL password in a text (what `bench run` prints goes through it)."""

from __future__ import annotations

import dataclasses
import re

from bench.config.schema import Config

__all__ = ["mask_passwords", "hide_url_passwords", "with_url"]

# The password runs to the last @ before a space: a quote or an unescaped @ in it is masked too (a
# JSON line may lose more than the password, never show it).
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]+:)(\S+)@")
_QUERY_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://\S*?[?&]password=)[^&\s'\"]+")


def mask_passwords(text: str) -> str:
    """Every password of a URL in ``text`` (user:password@host, or ?password=) replaced by ***."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", text))


def _hydra_quoted(value: str) -> str:
    """``value`` as one quoted string of Hydra's override grammar (any character allowed: ``?``, ``&``,
    ``=``, spaces); a quote inside is escaped, and so are backslashes before a quote or the end."""
    if "'" not in value and not value.endswith("\\"):
        return f"'{value}'"
    escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value).replace("'", "\\'")
    return f"'{escaped}'"


def hide_url_passwords(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line as Hydra may see it: a ``results.url=`` value quoted when Hydra's grammar would
    refuse it unquoted (``?sslmode=require``, ``&``), and its password masked, so that nothing Hydra
    prints or writes (--cfg, --help, --info, multirun.yaml, its errors) holds the password; with the
    masked URLs mapped to the URLs given (``with_url`` puts them back into the typed configs)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    out: list[str] = []
    urls: dict[str, str] = {}
    for arg in args:
        key, eq, value = arg.partition("=")
        if arg.startswith("-") or not eq or key.lstrip("+~") != "results.url":
            out.append(arg)
            continue
        try:
            parsed = parser.parse_override(arg)
        except Exception:  # noqa: BLE001 - not in Hydra's grammar unquoted: quote it
            if value[:1] in ("'", '"') and value[-1:] == value[:1] and len(value) > 1:
                out.append(arg)  # quoted by the user and still wrong: Hydra's answer, masked, says why
                continue
            arg = f"{key}={_hydra_quoted(value)}"
            try:
                parsed = parser.parse_override(arg)
            except Exception:  # noqa: BLE001
                out.append(arg)
                continue
        url = parsed.value()
        if isinstance(url, str) and not parsed.is_sweep_override() and mask_passwords(url) != url:
            masked = mask_passwords(url)
            if urls.get(masked, url) != url:  # two passwords of one user@host/db: tell them apart
                masked = mask_passwords(url).replace("***", f"***{len(urls)}", 1)
            urls[masked] = url
            arg = f"{key}={_hydra_quoted(masked)}"
        out.append(arg)
    return out, urls


def with_url(config: Config, urls: dict[str, str]) -> Config:
    """``config`` with its results.url as given on the command line (hide_url_passwords masked it for Hydra)."""
    url = config.results.url
    if url in urls:
        return dataclasses.replace(config, results=dataclasses.replace(config.results, url=urls[url]))
    return config
