"""Bad input that used to slip through: each is refused up front with one line naming the key, the
value and the fix, exit code 2, nothing written and nothing left in the temporary folder; and
`bench COMMAND --help` prints that command's usage.

In-process (bench.cli.main.main) where that tests the same thing; one fresh process per kind of
command checks what only a process shows (its temporary folder, its stderr as a whole). The older
table of bad runs is tests/integration/test_cli.py::BAD_RUNS.
"""

from __future__ import annotations

import importlib.util
import tempfile

import pytest

from bench.cli.main import main
from bench.results.store import ResultsStore
from tests.faults.harness import assert_refused, bench, leftovers
from tests.recordfactory import GOLDEN, make_record

TARGET = ["suite=custom", "model.target=tests.fakes:build_tiny"]
ONNX = ["suite=custom", "model.path={onnx}", "backend=onnxruntime"]
PASSWORD = "Inputs-Pw-93a1"

# (arguments, what the one line must contain). Placeholders name the files of the ``assets`` fixture.
BAD_INPUTS = [
    # A model the user brings (suite=custom): its dims, shapes, sizes and dtype.
    ([*TARGET, "model.input_shape=[16]", "model.dims.nosuch=5"], "model.dims.nosuch=5 is not read for model.target"),
    ([*ONNX, "model.dims.H=4", "model.dims.nosuch=5"],
     "model.dims.nosuch=5 is not an open dimension of {onnx}: use one of H"),
    ([*ONNX, "model.dims.H=-3"], "model.dims.H=-3 must be >= 1"),
    ([*ONNX, "model.dims.H=0"], "model.dims.H=0 must be >= 1"),
    ([*ONNX, "model.dims.H=4", "model.dims.N=3"], "model.dims.N=3 names the batch axis: use batch_size=3"),
    ([*ONNX, "model.dims.H=4", "model.shapes.nosuch=[3,4,8]"], "model.shapes.nosuch=[3, 4, 8] is not an input of"),
    ([*ONNX, "model.shapes.image=[3,-4,8]"], "model.shapes.image=[3, -4, 8] has a size below 1"),
    ([*ONNX, "model.shapes.image=[4,4,8]"], "model.shapes.image=[4, 4, 8] disagrees with the file's shape"),
    ([*ONNX, "model.dims.H=4", "model.input_shape=[3]"], "model.input_shape=[3] applies to model.target"),
    ([*TARGET, "model.input_shape=[3,-1,32]"], "model.input_shape=[3, -1, 32] has a size below 1"),
    ([*TARGET, "model.input_shape=[0]"], "model.input_shape=[0] has a size below 1"),
    ([*TARGET, "model.input_shape=[16]", "model.input_dtype=nosuch"],
     "model.input_dtype='nosuch' is not a dtype bench can draw inputs of: use one of float32"),
    ([*TARGET, "model.input_shape=[16]", "model.shapes.x=[3]"], "model.shapes.x=[3] is not read for model.target"),
    (["model.target=tests.fakes:build_tiny"], "model.target='tests.fakes:build_tiny' is not read by suite=anomaly"),
    (["model.dims.H=3"], "model.dims.H=3 is not read by suite=anomaly: add suite=custom"),
    # Hydra's flags.
    (["--cfg", "nosuch"], "--cfg='nosuch' is not a choice: use one of job, hydra, all"),
    (["--cfg=nosuch"], "--cfg='nosuch' is not a choice"),
    (["-c"], "-c needs a value"),
    (["--multirun=yes"], "--multirun='yes' takes no value"),
    (["--info", "nosuch"], "--info='nosuch' is not a choice: use one of all, config"),
    (["--flag"], "--flag is not an option of `bench run`"),
    (["--config-dir", "{missing}"], "--config-dir='{missing}' is not a folder"),
    (["-cd"], "-cd needs a value"),
    (["-cp", "{folder}"], "-cp='{folder}' replaces bench's own config folder: use -cd {folder}"),
    (["hydra.searchpath=[{missing}]"], "hydra.searchpath='{missing}' is not a folder"),
    (["--experimental-rerun", "{missing}"], "--experimental-rerun='{missing}' does not exist"),
    # The results store.
    ([f"results.url=mysql://bench:{PASSWORD}@db/bench"],
     "results.url='mysql://bench:***@db/bench' uses mysql, which bench's store does not support: use sqlite:///PATH "
     "or postgresql://"),
    (["results.url=notaurl"], "results.url='notaurl' is not a database URL"),
    (["results.url=sqlite://"], "results.url='sqlite://' is an in-memory SQLite database"),
    (["results.url=sqlite:///{file}/bench.db"], "results.url='sqlite:///{file}/bench.db' needs the folder {file}"),
    (["results.dir={file}"], "results.dir='{file}' is not a folder"),
    (["results.dir="], "results.dir='' is empty"),
    (["cache.dir={file}/cache"], "cache.dir='{file}/cache' cannot be created"),
    # Ranges and combinations.
    (["tag='a\nb'"], "tag='a\\nb' holds a control character"),
    (["tag=a\tb"], "tag='a\\tb' holds a control character"),
    (["suite.seed=-1"], "suite.seed=-1 must be >= 0"),
    (["scenario.warmup_max_s=0.5"], "scenario.warmup_max_s=0.5 is below the minimum warm-up"),
    (["scenario.target_rel_ci=0"], "scenario.target_rel_ci=0.0 must be in (0, 1)"),
    (["scenario.min_duration_s=-1"], "scenario.min_duration_s=-1.0 must be > 0"),
    (["scenario.tail_percentile=1.5"], "scenario.tail_percentile=1.5 is not a reported tail percentile"),
    (["repeats=0"], "repeats=0 must be >= 1"),
    (["worker.timeout_s=-1"], "worker.timeout_s=-1.0 must be > 0"),
    (["sensors.tdp_w=-5"], "sensors.tdp_w=-5.0 must be > 0"),
    (["sweep=batch", "sweep.max_batch=0"], "sweep.max_batch=0 must be >= 1"),
    (["sweep=batch", "sweep.start=64", "sweep.max_batch=8"], "sweep.start=64 is above the sweep's cap"),
    (["sweep=batch", "sweep.min_gain=-1.5"], "sweep.min_gain=-1.5 must be in [-1, 1)"),
    (["sweep=batch", "sweep.min_gain=2"], "sweep.min_gain=2.0 must be in [-1, 1)"),
    (["suite.dataset=mvtec_ad_2", "suite.boundary=pipeline", "suite.tile_size=0"], "suite.tile_size=0 is too small"),
    # Several CUDA streams where they cannot be served (the GPU is not needed to refuse them).
    (["backend=cuda-compiled", "backend.compile_mode=reduce-overhead", "scenario=server", "backend.streams=2"],
     "backend.streams=2 is not supported with backend.compile_mode=reduce-overhead (its CUDA graphs replay into one "
     "set of buffers, which batches in flight would share): use backend.compile_mode=default or "
     "max-autotune-no-cudagraphs with several streams, or backend.streams=1"),
    (["backend=cuda-compiled", "backend.compile_mode=max-autotune", "scenario=multistream", "backend.streams=4"],
     "backend.streams=4 is not supported with backend.compile_mode=max-autotune"),
    (["backend=cuda-compiled", "backend.streams=2"], "backend.streams=2 applies to the load scenarios only"),
    (["backend=cpu", "scenario=server", "backend.streams=2"],
     "backend.streams=2 is not supported by backend=cpu (device cpu; the streams are CUDA streams): use backend=cuda "
     "or cuda-compiled"),
    (["backend=cpu-compiled", "scenario=multistream", "backend.streams=2"],
     "backend.streams=2 is not supported by backend=cpu-compiled (device cpu;"),
]

# The commands that read stored results: bench ARGS (no `run` prepended).
BAD_COMMANDS = [
    (["leaderboard", "prices={missing}"], "prices='{missing}' does not exist"),
    (["leaderboard", "prices="], "prices='' is empty"),
    (["leaderboard", "prices={folder}", "{store}"], "prices='{folder}' holds no price files"),
    (["leaderboard", "prices={notyaml}", "{store}"], "prices='{notyaml}' is not readable YAML"),
    (["leaderboard", f"results.url=mysql://bench:{PASSWORD}@db/bench"],
     "results.url='mysql://bench:***@db/bench' uses mysql"),
    (["leaderboard", "{store}", "--output", "{file}/board.txt"], "--output='{file}/board.txt' needs the folder"),
    (["leaderboard", "{store}", "--format", "nosuch"], "--format='nosuch' is not a leaderboard format"),
    (["export", "{store}", "--format", "nosuch"], "--format='nosuch' is not an export format"),
    (["export", "{store}", "--output", "{folder}"], "--output='{folder}' is a folder"),
    (["report", "scaling", "{store}", "--output", "{folder}"], "--output='{folder}' is a folder"),
    (["import", "{missing}"], "{missing} does not exist"),
    (["import", "{notjson}"], "{notjson} is not a RunRecord"),
    (["import", "{golden}", "results.dir={file}"], "results.dir='{file}' is not a folder"),
    (["import", "{golden}", "results.dir={file}/results"], "results.dir='{file}/results' cannot be created"),
    (["import", "{golden}", "results.url=sqlite:///{file}/bench.db"], "needs the folder {file}"),
    (["import", "{golden}", "results.dir="], "results.dir='' is empty"),
    (["leaderboard", "results.dir="], "results.dir='' is empty"),
    (["compare", "tag=x", "tag=nosuch", "{store}"], "the selection tag=nosuch matches no record"),
    (["compare", "tag=x"], "`bench compare` takes a BASELINE and a CANDIDATE selection, got 1"),
    (["compare", "tag=x", "", "{store}"], "empty selection: give a selection such as tag=before"),
    (["compare", "tag=x", "tag=y", "{store}", "--resamples", "0"], "--resamples='0' is not valid"),
]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Files the bad inputs name, outside the folder each test runs in (which must stay empty)."""
    base = tmp_path_factory.mktemp("assets")
    (base / "folder").mkdir()
    (base / "file").write_text("a file where a folder is expected\n")
    (base / "notyaml.yaml").write_text("hardware: [\n")
    (base / "notjson.json").write_text("not JSON\n")
    store = ResultsStore(base / "results")
    store.write(make_record(hardware="A", median_ms=1.0, seed=1, tag="x"))
    store.write(make_record(hardware="B", median_ms=2.0, seed=2, tag="y"))
    store.close()
    names = {"missing": str(base / "missing"), "folder": str(base / "folder"), "file": str(base / "file"),
             "notyaml": str(base / "notyaml.yaml"), "notjson": str(base / "notjson.json"),
             "store": f"results.dir={base / 'results'}", "onnx": "", "golden": str(GOLDEN)}
    try:
        names["onnx"] = str(_relu_onnx(base / "relu.onnx"))
    except ImportError:
        pass
    return names


def _relu_onnx(path):
    """Y = Relu(X), X of shape (N, 3, H, 8): a batch axis N, an open height H, two fixed sizes."""
    import onnx
    from onnx import TensorProto, helper

    dims = ["N", 3, "H", 8]
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, dims)
    graph = helper.make_graph([helper.make_node("Relu", ["image"], ["out"])], "relu", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _fill(items, names):
    return [item.format(**names) for item in items]


@pytest.fixture
def own_tmp(in_tmp, monkeypatch):
    """The test's folder, with Python's temporary folder inside it (tmp/) so that leftovers show."""
    (in_tmp / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(in_tmp / "tmp"))
    return in_tmp


def _assert_one_line_refusal(code, err, message, folder):
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1, err
    assert lines[0].startswith("bench: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in err and PASSWORD not in err
    written = sorted(p.name for p in folder.iterdir() if p.name != "tmp")
    assert written == [], f"written on bad input: {sorted(str(p) for p in folder.rglob('*'))}"
    assert leftovers(folder) == [] and list((folder / "tmp").iterdir()) == []


def _skip_without(args):
    # find_spec, not an import: onnxruntime writes a device id under XDG_CACHE_HOME when imported,
    # which would count as written by bench.
    if any("{onnx}" in a for a in args):
        for module in ("onnx", "onnxruntime"):
            if importlib.util.find_spec(module) is None:
                pytest.skip(f"needs {module}")


@pytest.mark.parametrize("args, message", BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS])
def test_bad_run_input_one_line_exit_2_nothing_written(args, message, assets, own_tmp, capsys):
    _skip_without(args)
    assert main(["run", *_fill(args, assets)]) == 2
    captured = capsys.readouterr()
    _assert_one_line_refusal(2, captured.err, message.format(**assets), own_tmp)
    assert captured.out == ""


@pytest.mark.parametrize("args, message", BAD_COMMANDS, ids=[" ".join(a) for a, _ in BAD_COMMANDS])
def test_bad_results_command_input_one_line_exit_2_nothing_written(args, message, assets, own_tmp, capsys):
    code = main(_fill(args, assets))
    captured = capsys.readouterr()
    _assert_one_line_refusal(code, captured.err, message.format(**assets), own_tmp)
    assert captured.out == ""


def test_a_refused_database_url_changes_nothing_in_the_store(assets, own_tmp, capsys):
    """results.url of an unsupported kind is refused before a driver is tried, and the store named
    by results.dir beside it is left as it was."""
    db = assets["store"].partition("=")[2] + "/bench.db"
    before = open(db, "rb").read()
    assert main(["import", assets["notjson"], f"results.url=mysql://u:{PASSWORD}@h/db"]) == 2
    assert main(["export", assets["store"], f"results.url=mysql://u:{PASSWORD}@h/db"]) == 2
    err = capsys.readouterr().err
    assert PASSWORD not in err and "psycopg" not in err and "pip install" not in err
    assert open(db, "rb").read() == before


COMMANDS = ["leaderboard", "compare", "export", "import", "report", "list", "sysinfo", "plan"]


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("command", COMMANDS)
def test_command_help_prints_its_usage_and_exits_0(command, flag, own_tmp, capsys):
    assert main([command, flag]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.strip().splitlines()
    assert lines[0] == "usage:" and lines[1].lstrip().startswith(f"bench {command} ")
    # Only this command's usage, not the whole of `bench --help`.
    others = [c for c in COMMANDS if c != command and f"bench {c} " in captured.out]
    assert others == []
    assert [p.name for p in own_tmp.iterdir() if p.name != "tmp"] == []


def test_help_after_other_arguments_still_prints_usage(capsys):
    assert main(["leaderboard", "suite=anomaly", "--format", "csv", "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage:\n  bench leaderboard ")


# In a fresh process: its temporary folder (TMPDIR) and its whole stderr, Hydra's warnings included.
@pytest.mark.parametrize("args, message", [
    ([*TARGET, "model.input_shape=[3,-1,32]"], "model.input_shape=[3, -1, 32] has a size below 1"),
    (["--config-dir", "/nonexistent-bench-config"], "--config-dir='/nonexistent-bench-config' is not a folder"),
    (["hydra.searchpath=[/nonexistent-bench-config]"], "hydra.searchpath='/nonexistent-bench-config' is not a folder"),
    (["backend=cuda-compiled", "backend.compile_mode=reduce-overhead", "scenario=server", "backend.streams=2"],
     "backend.streams=2 is not supported with backend.compile_mode=reduce-overhead"),
])
def test_refused_in_a_fresh_process(args, message, tmp_path):
    proc = bench(["run", *args], tmp_path, timeout=120)
    assert_refused(proc, message, tmp_path)
    assert proc.stdout == ""

