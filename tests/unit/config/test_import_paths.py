"""bench.plugins: import paths (legacy ones included), config folders and their options."""

from __future__ import annotations

import sys

import pytest

from bench.config.compose import HydraArgs, compose, parse_hydra_args, to_config
from bench.plugins import group_options, load_suite, resolve, search_dirs, searchpath_dirs


def test_legacy_import_paths_resolve_under_bench():
    from bench.backends.torch_eager import TorchBackend
    from bench.suites import anomaly
    from bench.suites.models import padim

    assert resolve("backends.torch_eager:TorchBackend") is TorchBackend
    assert resolve("bench.backends.torch_eager:TorchBackend") is TorchBackend
    assert resolve("suites.anomaly:SUITE") is anomaly.SUITE
    assert resolve("suites.models.padim:build_padim_wrn50") is padim.build_padim_wrn50
    assert load_suite("suites.anomaly:SUITE") is anomaly.SUITE  # one module object, not a second copy


def test_a_legacy_prefix_falls_back_to_the_literal_module(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "__init__.py").write_text("")
    (tmp_path / "suites" / "only_here.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "suites" or m.startswith("suites.")]:
        monkeypatch.delitem(sys.modules, name)
    assert resolve("suites.only_here:VALUE") == 42


@pytest.mark.parametrize("path, message", [("no_colon", "must look like"), ("bench.plugins:nope", "no attribute")])
def test_bad_import_paths(path, message):
    with pytest.raises(ValueError, match=message):
        resolve(path)


def test_load_suite_refuses_what_is_not_a_suite():
    with pytest.raises(TypeError, match="is not a bench.suites.base.Suite"):
        load_suite("bench.plugins:CONF_DIR")


def _option_folder(root, group="backend", name="extra"):
    (root / group).mkdir(parents=True)
    (root / group / f"{name}.yaml").write_text(
        f"defaults:\n  - /schema/backend/torch@_here_\nname: {name}\nimpl: bench.backends.torch_eager:TorchBackend\n"
        "device: cpu\n")
    return root


def test_config_folders_add_options(tmp_path):
    a, b = _option_folder(tmp_path / "a", name="extra_a"), _option_folder(tmp_path / "b", name="extra_b")
    assert "extra_a" not in group_options("backend")
    assert {"cpu", "extra_a", "extra_b"} <= set(group_options("backend", [a, b]))
    assert search_dirs([a])[:2] == [search_dirs()[0], a.resolve()]
    assert searchpath_dirs([f"file://{a}", str(b)]) == [a, b]


def test_cd_and_hydra_searchpath_compose_together(tmp_path):
    a, b = _option_folder(tmp_path / "a", name="extra_a"), _option_folder(tmp_path / "b", name="extra_b")
    for backend in ("extra_a", "extra_b", "cpu"):
        cfg = to_config(compose([f"hydra.searchpath=[file://{b}]", f"backend={backend}"], config_dirs=[str(a)]))
        assert cfg.backend.name == backend
    args = parse_hydra_args(["-cd", str(a), f"hydra.searchpath=['file://{b}']", "batch_size=2"])
    assert args.config_folders == [str(a), str(b)]
    assert HydraArgs().config_folders == []
