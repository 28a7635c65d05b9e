"""The video suite: its catalog, data sets and options, H.264 encoding and decoding with PyAV, the
pipeline boundary (compressed clip in memory -> sampled, scaled, cropped, normalised frames -> model),
the user's video folder, bad input refused in one line, and one end-to-end `bench run`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bench.cli.main import main
from bench.suites.base import SuiteOptionError
from bench.suites.video import CLIPS, DATASETS, SUITE, check_options, describe

av = pytest.importorskip("av")

from bench.suites.video_io import (ClipSpec, available_codec, build_video_pipeline, check_video_folder,  # noqa: E402
                                   decode_frames, encode_mp4, pack, synthetic_frames)


def opts(**kw):
    base = {"dataset": "", "boundary": "model", "tile_size": 256, "data_path": None}
    base.update(kw)
    return base


class Recorder(torch.nn.Module):
    """A stand-in model that keeps what it was given and returns its per-sample mean (and any state)."""

    def forward(self, x, *state):
        self.seen = x
        return (x.flatten(1).mean(dim=1), *state) if state else x.flatten(1).mean(dim=1)


def test_catalog_entries_are_complete():
    assert SUITE.names() == ["x3d_xs", "x3d_s", "x3d_m", "r2plus1d_18", "videomae_s", "movinet_a0_stream",
                             "st_gcn", "pose_resnet18"]
    for workload in SUITE.workloads:
        entry = workload.catalog()
        for key in ("task", "domain", "category", "min_resolution", "licence", "dataset_licence", "reference",
                    "dataset", "preprocessing", "description"):
            assert entry[key], (workload.name, key)
        assert workload.latency_tier_ms > 0 and workload.inputs.startswith("bench.suites.video:")
        assert any(year in workload.reference for year in ("2018", "2020", "2021", "2022")), workload.name
    assert set(DATASETS) == {"kinetics400", "ntu_rgbd", "ur_fall", "toyota_smarthome"}
    assert DATASETS["ur_fall"].native_hw == (480, 640) and DATASETS["ur_fall"].fps == 30


def test_model_boundary_inputs_have_the_workload_shapes():
    for name in ("x3d_xs", "st_gcn", "pose_resnet18"):
        workload = SUITE.get(name)
        (x,) = workload.make_inputs(2, 0)
        assert tuple(x.shape) == (2, *workload.input_shape)
    frame, state = SUITE.get("movinet_a0_stream").make_inputs(1, 0)
    assert frame.shape == (1, 3, 1, 172, 172) and state.shape == (1, 1_290_321) and not state.any()
    # Normalised as the pipeline would: X3D's mean 0.45 and std 0.225 map [0, 1] to [-2, 2.44].
    (clip,) = SUITE.get("x3d_xs").make_inputs(1, 0)
    assert clip.min() >= -2.0 - 1e-6 and clip.max() <= 0.55 / 0.225 + 1e-6


def test_describe_gives_the_clip_and_the_multistream_rate():
    info = describe(SUITE.get("x3d_xs"), opts(dataset="ur_fall"))
    assert info["clip_span_frames"] == 48 and info["clip_span_s"] == pytest.approx(1.6)
    assert info["requests_per_s_per_camera"] == pytest.approx(0.625)  # scenario.fps for multistream
    stream = describe(SUITE.get("movinet_a0_stream"), opts(dataset="toyota_smarthome", boundary="pipeline"))
    assert stream["requests_per_s_per_camera"] == 20 and stream["native_fps"] == 20
    assert "one frame" in stream["timed"]
    assert describe(SUITE.get("st_gcn"), opts())["clip_span_frames"] == 300


def test_h264_encode_and_decode_round_trip():
    assert available_codec() == "libx264"  # the PyPI wheel's FFmpeg has it; else the suite uses mpeg4
    frames = synthetic_frames(12, 48, 64, seed=3)
    np.testing.assert_array_equal(frames, synthetic_frames(12, 48, 64, seed=3))  # seeded
    data = encode_mp4(frames, fps=30)
    with av.open(__import__("io").BytesIO(data)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and (stream.height, stream.width) == (48, 64)
    kept = decode_frames(data, span=12, stride=4)
    assert kept.shape == (3, 48, 64, 3) and kept.dtype == np.uint8
    # Which frames come back, and faithfully: a clip whose frame t is a flat grey of level 20 t decodes
    # (every 4th frame kept) to levels 0, 80, 160 within H.264's rounding.
    flat = np.repeat(np.arange(12, dtype=np.uint8)[:, None, None, None] * 20, 48 * 64 * 3).reshape(12, 48, 64, 3)
    levels = decode_frames(encode_mp4(flat, fps=30), span=12, stride=4).reshape(3, -1).mean(axis=1)
    np.testing.assert_allclose(levels, [0, 80, 160], atol=3)
    # A video shorter than the clip repeats its last frame.
    padded = decode_frames(data, span=24, stride=4)
    assert padded.shape[0] == 6
    np.testing.assert_array_equal(padded[3], padded[5])


def test_pipeline_decodes_samples_scales_crops_and_normalises():
    video = encode_mp4(synthetic_frames(8, 60, 80, seed=1), fps=30)
    data, lengths = pack([video] * 2)
    clip = ClipSpec(frames=4, stride=2, short_side=30, crop=24, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    recorder = Recorder()
    pipe = build_video_pipeline(recorder, clip)
    with torch.inference_mode():
        out = pipe(data, lengths)
    assert out.shape == (2,)
    seen = recorder.seen
    assert seen.shape == (2, 3, 4, 24, 24)
    # The same by hand from the decoded frames: short side 60 -> 30 (80 -> 40), centre crop 24, normalise.
    decoded = torch.from_numpy(decode_frames(video, 8, 2)).permute(0, 3, 1, 2).float() / 255
    scaled = torch.nn.functional.interpolate(decoded, size=(30, 40), mode="bilinear", align_corners=False,
                                             antialias=True)[:, :, 3:27, 8:32]
    torch.testing.assert_close(seen[0].transpose(0, 1), (scaled - 0.5) / 0.25)
    torch.testing.assert_close(seen[1], seen[0])


def test_stream_pipeline_passes_the_state_through_and_cannot_be_exported(tmp_path):
    data, lengths = pack([encode_mp4(synthetic_frames(1, 40, 40, seed=0), fps=30)])
    clip = ClipSpec(1, 1, 32, 32, (0.0,) * 3, (1.0,) * 3, stream=True)
    pipe = build_video_pipeline(Recorder(), clip, "stream")
    state = torch.arange(6.0).view(1, 6)
    with torch.inference_mode():
        _, new_state = pipe(data, lengths, state)
    torch.testing.assert_close(new_state, state)
    assert pipe.model.seen.shape == (1, 3, 1, 32, 32)
    with pytest.raises(Exception, match="suite.boundary=model"):
        torch.export.export(pipe, (data, lengths, state))


def _write_videos(folder, sizes, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        (folder / f"cam{i}.mp4").write_bytes(encode_mp4(synthetic_frames(6, h, w, seed + i), fps=30))
    return folder


def test_a_folder_of_the_users_videos(tmp_path):
    folder = _write_videos(tmp_path / "ward", [(64, 96), (64, 96)])
    assert check_video_folder(str(folder)) == (64, 96)
    instance = SUITE.make(SUITE.get("pose_resnet18"), 3, 0, opts(boundary="pipeline", data_path=str(folder)))
    data, lengths = instance.inputs
    assert data.dtype == torch.uint8 and lengths.tolist()[0] == (folder / "cam0.mp4").stat().st_size
    assert instance.info["data_path"] == str(folder) and instance.info["boundary"] == "pipeline"


def test_bad_video_folders_are_refused(tmp_path):
    with pytest.raises(SuiteOptionError, match="does not exist"):
        check_video_folder(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no video")
    with pytest.raises(SuiteOptionError, match="holds no video file"):
        check_video_folder(str(tmp_path / "empty"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.mp4").write_bytes(b"not a video")
    with pytest.raises(SuiteOptionError, match="cannot decode"):
        check_video_folder(str(broken))
    mixed = _write_videos(tmp_path / "mixed", [(32, 48), (48, 64)])
    with pytest.raises(SuiteOptionError, match="several frame sizes"):
        check_video_folder(str(mixed))


@pytest.mark.parametrize("options, key, problem", [
    (opts(dataset="ucf101"), "suite.dataset", "is not a known data set"),
    (opts(boundary="camera"), "suite.boundary", "is not a measurement boundary"),
    (opts(data_path="/x"), "data.path", "needs the pipeline boundary"),
])
def test_bad_options_are_refused(options, key, problem):
    with pytest.raises(SuiteOptionError) as info:
        check_options(SUITE, options)
    assert info.value.key == key and problem in str(info.value)


def test_pipeline_without_pyav_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "av" else real(name, *a))
    with pytest.raises(SuiteOptionError, match=r"bench\[video\]"):
        check_options(SUITE, opts(boundary="pipeline"))


@pytest.mark.parametrize("args, message", [
    (["suite=video", "suite.boundary=pipeline", "data.path=/does/not/exist"], "data.path='/does/not/exist' does not exist"),
    (["suite=video", "suite.dataset=ucf101"], "suite.dataset='ucf101' is not a known data set"),
])
def test_bad_options_through_the_cli(args, message, in_tmp, capsys):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert list(in_tmp.iterdir()) == []


@pytest.mark.slow
def test_bench_run_streams_compressed_frames_through_movinet(in_tmp):
    """One end-to-end run on the smallest workload at the pipeline boundary: a worker decodes an
    in-memory H.264 frame of UR Fall's size, preprocesses it and runs MoViNet-A0 with its state."""
    code = main(["run", "suite=video", "suite.only=[movinet_a0_stream]", "suite.boundary=pipeline",
                 "suite.dataset=ur_fall", f"results.dir={in_tmp / 'results'}", "sensors.enabled=false",
                 "scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
                 "scenario.min_duration_s=0.05", "scenario.max_duration_s=0.5"])
    assert code == 0
    (path,) = (in_tmp / "results" / "records").rglob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok"
    workload = record["workload"]
    assert workload["boundary"] == "pipeline" and workload["native_hw"] == [480, 640]
    assert workload["codec"] == "libx264" and workload["params"] == 3_111_784
    assert workload["input_shapes"][2] == [1, 1_290_321]  # the packed state travels as an input
    assert record["parity"]["ok"] is True
