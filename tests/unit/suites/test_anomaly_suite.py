"""The anomaly suite's data sets and measurement boundaries: the pipeline on a folder of generated
PNG files, tiling and stitching, and bad input refused before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli.main import main
from bench.suites.anomaly import DATASETS, SUITE, check_options, describe
from bench.suites.base import IMAGENET_MEAN, IMAGENET_STD, SuiteOptionError
from bench.suites.images import build_pipeline, check_image_folder, load_images, tile_grid


class ChannelMean(torch.nn.Module):
    """A stand-in model: the map is the channel mean of its input, the score the map's maximum."""

    def forward(self, x):
        m = x.mean(dim=1, keepdim=True)
        return m, m.amax(dim=(1, 2, 3))


def write_pngs(folder, n=3, size=(40, 52), seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


def opts(**kw):
    base = {"dataset": "", "boundary": "model", "tile_size": 256, "data_path": None}
    base.update(kw)
    return base


def test_tiling_stitches_the_map_back_exactly():
    images = torch.randint(0, 256, (2, 50, 70, 3), dtype=torch.uint8)
    pipe = build_pipeline(ChannelMean(), input_size=16, resize=None, input_norm="none", tile=16)
    anomaly_map, score = pipe(images)
    assert anomaly_map.shape == (2, 1, 50, 70)
    expected = images.permute(0, 3, 1, 2).float().div(255).mean(dim=1, keepdim=True)
    torch.testing.assert_close(anomaly_map, expected)
    torch.testing.assert_close(score, expected.amax(dim=(1, 2, 3)))
    assert tile_grid(50, 70, 16) == (4, 5)


def test_resize_normalises_and_upsamples_to_the_image():
    images = torch.full((1, 30, 40, 3), 128, dtype=torch.uint8)
    pipe = build_pipeline(ChannelMean(), input_size=8, resize=None, input_norm="imagenet")
    anomaly_map, score = pipe(images)
    assert anomaly_map.shape == (1, 1, 30, 40)
    value = np.mean([(128 / 255 - m) / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)])
    torch.testing.assert_close(anomaly_map, torch.full_like(anomaly_map, float(value)))
    assert score.item() == pytest.approx(value, abs=1e-5)


def test_centre_crop_map_is_put_back_in_place():
    images = torch.full((1, 64, 64, 3), 255, dtype=torch.uint8)
    pipe = build_pipeline(ChannelMean(), input_size=28, resize=32, input_norm="none")
    anomaly_map, _ = pipe(images)
    assert anomaly_map.shape == (1, 1, 64, 64)
    assert anomaly_map[0, 0, 32, 32] == pytest.approx(1.0, abs=1e-5)  # centre: the crop's map
    assert anomaly_map[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-5)  # corner: outside the crop


@pytest.mark.slow
def test_pipeline_on_a_folder_of_pngs_matches_the_model_on_the_preprocessed_tensor(tmp_path):
    folder = write_pngs(tmp_path / "good", n=2, size=(300, 400))
    assert check_image_folder(str(folder)) == (300, 400)
    workload = SUITE.get("efficientad_s")
    instance = SUITE.make(workload, 3, 0, opts(boundary="pipeline", data_path=str(folder)))
    (images,) = instance.inputs
    assert images.dtype == torch.uint8 and images.shape == (3, 300, 400, 3)  # cycles through 2 files
    torch.testing.assert_close(images[2], images[0])
    with torch.inference_mode():
        anomaly_map, score = instance.model(images)
        x = torch.nn.functional.interpolate(images.permute(0, 3, 1, 2).float() / 255, size=(256, 256),
                                            mode="bilinear", align_corners=False, antialias=True)
        ref_map, ref_score = instance.model.model(x)
    assert anomaly_map.shape == (3, 1, 300, 400) and score.shape == (3,)
    torch.testing.assert_close(score, ref_score)
    assert instance.info["image_hw"] == [300, 400] and instance.info["boundary"] == "pipeline"


def test_datasets_and_their_handling():
    assert set(DATASETS) == {"mvtec_ad", "visa", "mvtec_ad_2"}
    info = describe(SUITE.get("efficientad_s"), opts(dataset="mvtec_ad_2", boundary="pipeline"))
    assert info["tiles_per_image"] == 8 * 10 and info["dataset"] == "MVTec AD 2"
    model_info = describe(SUITE.get("efficientad_s"), opts(dataset="mvtec_ad_2"))
    assert model_info["tile_size"] == 256  # a model input is one tile
    assert describe(SUITE.get("efficientad_s"), opts(dataset="visa"))["native_hw"] == [1000, 1500]


@pytest.mark.parametrize(
    "options, key, problem",
    [
        (opts(dataset="imagenet"), "suite.dataset", "is not a known data set"),
        (opts(boundary="camera"), "suite.boundary", "is not a measurement boundary"),
        (opts(dataset="mvtec_ad_2", boundary="pipeline", tile_size=4096), "suite.tile_size", "larger than the image"),
        (opts(data_path="/x"), "data.path", "needs the pipeline boundary"),
    ],
)
def test_bad_options_are_refused(options, key, problem):
    with pytest.raises(SuiteOptionError) as info:
        check_options(SUITE, options)
    assert info.value.key == key and problem in str(info.value)


def test_bad_image_folders_are_refused(tmp_path):
    with pytest.raises(SuiteOptionError, match="does not exist"):
        check_image_folder(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SuiteOptionError, match="holds no image"):
        check_image_folder(str(tmp_path / "empty"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.png").write_bytes(b"not a png")
    with pytest.raises(SuiteOptionError, match="cannot decode"):
        check_image_folder(str(broken))
    mixed = write_pngs(tmp_path / "mixed", n=1, size=(20, 20))
    write_pngs(tmp_path / "mixed2", n=1, size=(30, 20))
    (tmp_path / "mixed2" / "img0.png").rename(mixed / "other.png")
    with pytest.raises(SuiteOptionError, match="several sizes"):
        check_image_folder(str(mixed))
    # A tile larger than the user's images.
    small = write_pngs(tmp_path / "small", n=1, size=(100, 120))
    with pytest.raises(SuiteOptionError, match="larger than the image"):
        check_options(SUITE, opts(dataset="mvtec_ad_2", boundary="pipeline", data_path=str(small)))
    assert load_images(str(small), 2).shape == (2, 100, 120, 3)


@pytest.mark.parametrize(
    "args, message",
    [
        (["suite.boundary=pipeline", "data.path=/does/not/exist"], "data.path='/does/not/exist' does not exist"),
        (["suite.dataset=imagenet"], "suite.dataset='imagenet' is not a known data set"),
        (["suite.dataset=mvtec_ad_2", "suite.boundary=pipeline", "suite.tile_size=9999"],
         "suite.tile_size=9999 is larger than the image"),
    ],
)
def test_bad_suite_options_through_the_cli(args, message, in_tmp, capsys):
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert list(in_tmp.iterdir()) == []


def test_empty_image_folder_through_the_cli(in_tmp, capsys):
    (in_tmp / "imgs").mkdir()
    assert main(["run", "suite.boundary=pipeline", f"data.path={in_tmp / 'imgs'}"]) == 2
    assert "holds no image" in capsys.readouterr().err
    assert [p.name for p in in_tmp.iterdir()] == ["imgs"]


@pytest.mark.parametrize("shape", [(3, 8, 8), (3, 4, 8, 8)], ids=["image", "clip"])
def test_imagenet_inputs_are_normalised_per_channel_for_images_and_clips(shape):
    """Workload.make_inputs draws a [0, 1] tensor and normalises channel c (the axis after the batch)
    with ImageNet's mean and std, whatever the rank: (N, 3, H, W) images and (N, 3, T, H, W) clips."""
    from bench.suites.base import Workload

    workload = Workload(name="w", family="f", builder="m:f", input_shape=shape, dataset="d", preprocessing="p",
                        latency_tier_ms=1, licence="l", reference="r", input_norm="imagenet")
    (x,) = workload.make_inputs(2, seed=3)
    assert x.shape == (2, *shape)
    raw = torch.rand((2, *shape), generator=torch.Generator().manual_seed(3))
    for c in range(3):
        torch.testing.assert_close(x[:, c], (raw[:, c] - IMAGENET_MEAN[c]) / IMAGENET_STD[c])


def test_code_hash_follows_the_modules_a_model_shares(tmp_path, monkeypatch):
    """A cached conversion is keyed by code_hash: a change of a module the builder imports (a shared
    backbone or head) must change it, not only a change of the builder's own file."""
    from bench.suites.base import Workload, _source_digest, code_hash

    package = tmp_path / "plugin_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "heads.py").write_text("SCALE = 1\n")
    (package / "net.py").write_text("from plugin_models.heads import SCALE\n\ndef build(seed):\n    return SCALE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    workload = Workload(name="w", family="f", builder="plugin_models.net:build", input_shape=(3,), dataset="d",
                        preprocessing="p", latency_tier_ms=1, licence="l", reference="r")
    before = code_hash(workload)
    assert code_hash(workload) == before
    (package / "heads.py").write_text("SCALE = 2\n")
    assert code_hash(workload) != before
    # bench's own suites: one digest over suites/, so a model in one folder and a backbone in another count.
    import bench.suites.anomaly as anomaly

    suites = Path(anomaly.__file__).parent
    assert _source_digest(str(suites / "models" / "vision" / "resnet.py")) == _source_digest(str(suites / "anomaly.py"))


def test_a_training_loss_is_outside_the_models_code_hash(monkeypatch):
    from bench.suites.base import _source_digest
    import bench.suites.anomaly as anomaly

    suites = Path(anomaly.__file__).parent
    assert (suites / "models" / "padim_train.py").is_file()  # the losses and fits live apart from the models
    digest = _source_digest(str(suites / "anomaly.py"))
    read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: b"changed" if self.name.endswith("_train.py") else read(self))
    assert _source_digest(str(suites / "anomaly.py")) == digest
    monkeypatch.setattr(Path, "read_bytes", lambda self: b"changed" if self.name == "backbones.py" else read(self))
    assert _source_digest(str(suites / "anomaly.py")) != digest
