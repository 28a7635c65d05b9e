"""bench.config.secrets: a results.url override as Hydra may see it (quoted where needed, password
masked) and the URL given put back; passwords masked in any text."""

from __future__ import annotations

import pytest

from bench.config.secrets import _hydra_quoted, hide_url_passwords, mask_passwords


@pytest.mark.parametrize("value", ["postgresql://u@h/db?sslmode=require&x=1", "it's", 'say "hi"', "a\\", "a\\'b",
                                   "c:\\dir\\", "p w", "=,[]{}()"])
def test_a_quoted_value_parses_back_to_itself(value):
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_override(f"results.url={_hydra_quoted(value)}")
    assert parsed.value() == value


def test_the_password_is_masked_for_hydra_and_the_url_given_is_kept():
    url = "postgresql://u:p'w@h:5432/db?sslmode=disable&application_name=x"
    args, urls = hide_url_passwords(["-m", "tag=a,b", f"results.url={url}", "batch_size=2"])
    assert args[:2] == ["-m", "tag=a,b"] and args[3] == "batch_size=2"
    assert args[2] == "results.url='postgresql://u:***@h:5432/db?sslmode=disable&application_name=x'"
    assert urls == {"postgresql://u:***@h:5432/db?sslmode=disable&application_name=x": url}


def test_urls_without_password_need_no_mapping_and_valid_ones_stay_as_typed():
    assert hide_url_passwords(["results.url=postgresql://u@h/db"]) == (["results.url=postgresql://u@h/db"], {})
    assert hide_url_passwords(["results.url=null", "results.url=${oc.env:URL}"])[1] == {}
    assert hide_url_passwords(["results.url=postgresql://u@h/db?x=1"])[0] == ["results.url='postgresql://u@h/db?x=1'"]


def test_two_passwords_of_one_address_stay_apart():
    args, urls = hide_url_passwords(["results.url=postgresql://u:one@h/db", "results.url=postgresql://u:two@h/db"])
    assert sorted(urls.values()) == ["postgresql://u:one@h/db", "postgresql://u:two@h/db"]
    assert len(set(args)) == 2 and not any("one" in a or "two" in a for a in args)


@pytest.mark.parametrize("text, shown", [
    ("url: postgresql://u:Pw@h/db", "url: postgresql://u:***@h/db"),
    ("'postgresql://u:Pw@h/db' and x@y", "'postgresql://u:***@h/db' and x@y"),
    ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),
    ("postgresql://u@h/db?sslmode=require&password=Pw&x=1", "postgresql://u@h/db?sslmode=require&password=***&x=1"),
    ("sqlite:///results/bench.db http://h:8080/x", "sqlite:///results/bench.db http://h:8080/x"),
])
def test_mask_passwords(text, shown):
    assert mask_passwords(text) == shown


PLAIN = [["results.dir=/tmp/store"], ["results.dir=results/team-a_1.2"], ["results.dir=./a/b"],
         ["results.dir=/srv/bench", "results.url=sqlite:////srv/bench/other.db"],
         ["results.url=postgresql://bench:s3cret@db.lab:5432/bench", "results.dir=/tmp/r"],
         ["results.dir=/tmp/r", "results.url=postgresql+psycopg://u@h/d%2Fx"]]
# a profile, interpolation, quoting, no "/" (a typed value), ~, a sweep, no results.dir, a key twice, a query
COMPOSED = [["results=local", "results.dir=/tmp/r"], ["results.dir=${oc.env:HOME}/r"], ["results.dir=results"],
            ["results.dir='/tmp/a b'"], ["results.dir=~/r"], ["results.dir=/a,/b"],
            ["results.url=postgresql://u@h/d"], ["results.dir=/a", "results.dir=/b"],
            ["results.dir=/tmp/r", "results.url=postgresql://u@h/d?sslmode=require"]]


@pytest.mark.parametrize("overrides", PLAIN + COMPOSED)
def test_plain_results_locations_read_without_composing_are_what_composing_gives(overrides, monkeypatch):
    """bench.config.location reads ``results.dir=/path [results.url=URL]`` without Hydra (a third of a
    second of every report): it gives what composing gives, and leaves everything else to composing."""
    from bench.config import location
    from bench.errors import ConfigError

    monkeypatch.setenv("HOME", "/home/someone")
    plain = location._plain_location(overrides)
    assert (plain is not None) == (overrides in PLAIN)
    try:
        composed = location._composed_location(overrides)
    except ConfigError:
        assert plain is None
        return
    assert location.results_location(overrides) == composed
    if plain is not None:
        assert plain == composed
