"""The time series suite's training tasks (bench.suites.training, bench.suites.models.timeseries.*_train):
each model trains the module the inference side builds, for the data set chosen, on the suite's own
windows; one step through the PyTorch session trains every parameter; the losses are the methods'
(USAD's gradients reach only the parts each phase trains; TranAD's and the TCN's predictions are the
model's own); a continual-learning batch is made of samples; the pipeline boundary is refused.
Small models at batch 2: the whole file runs in seconds. Nothing here asserts a speed."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from bench.backends.torch_training import prepare_training  # noqa: E402
from bench.suites.base import SuiteOptionError  # noqa: E402
from bench.suites.models.timeseries.lstm_ae_train import teacher_forced_reconstruction  # noqa: E402
from bench.suites.models.timeseries.tcn_train import next_sample_predictions  # noqa: E402
from bench.suites.models.timeseries.tranad_train import tranad_phases  # noqa: E402
from bench.suites.models.timeseries.usad_train import usad_phase_losses  # noqa: E402
from bench.suites.series import cut_windows, fit_normalisation, synthetic_series  # noqa: E402
from bench.suites.timeseries import DATASETS, HORIZON, LOOKBACK, SUITE  # noqa: E402
from bench.suites.training import TRAINING, check_trainable, training_task  # noqa: E402

SEED = 3
MODELS = ("lstm_ae", "usad", "tranad", "tcn", "patchtst", "dlinear")
FORECASTING = ("patchtst", "dlinear")


def opts(**kw):
    base = {"dataset": "", "boundary": "model", "tile_size": 256, "data_path": None}
    base.update(kw)
    return base


def inference(name, options, batch=2):
    return SUITE.make(SUITE.adapted(SUITE.get(name), options), batch, SEED, options)


def test_every_time_series_model_trains_by_backprop():
    assert set(TRAINING["timeseries"]) == set(SUITE.names()) == set(MODELS)
    assert set(TRAINING["timeseries"].values()) == {"backprop"}


@pytest.mark.parametrize("dataset", ["", "swat"])
@pytest.mark.parametrize("name", MODELS)
def test_one_step_trains_the_inference_model(name, dataset):
    options = opts(dataset=dataset)
    task = training_task(name, 2, SEED, options)
    reference = inference(name, options).model
    # The module the inference side measures, weights included, for these options' channels and window.
    assert task.model is not None
    expected = reference.state_dict()
    assert list(task.model.state_dict()) == list(expected)
    assert all(torch.equal(v, expected[k]) for k, v in task.model.state_dict().items())
    window, channels = SUITE.adapted(SUITE.get(name), options).input_shape
    assert channels == DATASETS[dataset or "smd"].channels
    assert task.info["channels"] == channels and task.info["window"] == window
    # Every parameter of the model is trained; nothing is frozen.
    assert {id(p) for p in task.parameters} == {id(p) for p in task.model.parameters()}
    assert task.info["frozen"] == [] and task.info["simplified"] is not None
    assert task.info["trainable_params"] == sum(p.numel() for p in task.model.parameters())
    loss = task.loss(task.batch)
    assert loss.dim() == 0 and math.isfinite(float(loss.detach()))
    before = [p.detach().clone() for p in task.parameters]
    session = prepare_training(task, "cpu", "fp32")
    session.step()
    assert math.isfinite(session.losses[0])
    assert all(not torch.equal(b, p.detach()) for b, p in zip(before, task.parameters))


@pytest.mark.parametrize("name", [n for n in MODELS if n not in FORECASTING])
def test_anomaly_models_train_on_the_inference_inputs(name):
    task = training_task(name, 2, SEED, opts())
    (windows,) = task.batch
    assert torch.equal(windows, inference(name, opts()).inputs[0])


@pytest.mark.parametrize("name", FORECASTING)
def test_forecasting_batch_is_the_look_back_and_the_horizon_after_it(name):
    task = training_task(name, 2, SEED, opts(dataset="etth1"))
    x, target = task.batch
    assert x.shape == (2, LOOKBACK, 7) and target.shape == (2, HORIZON, 7)
    length = LOOKBACK + HORIZON
    values = synthetic_series(length + 1 + 2048, 7, SEED)
    mean, std = fit_normalisation(values)
    windows, _ = cut_windows(values, 2, length, SEED)
    assert torch.equal(torch.cat((x, target), dim=1), torch.from_numpy((windows - mean) / std))
    assert task.model(x).shape == target.shape


@pytest.mark.parametrize("name", MODELS)
def test_a_batch_is_made_of_samples(name):
    task = training_task(name, 2, SEED, opts(dataset="psm"))
    shape = SUITE.adapted(SUITE.get(name), opts(dataset="psm")).input_shape
    samples = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))
    batch = task.batch_of(samples)
    assert batch[0] is samples
    if name in FORECASTING:
        assert torch.equal(batch[1], samples[:, -HORIZON:])  # the window's own tail (info["simplified"])
    else:
        assert len(batch) == 1
    with torch.no_grad():
        assert math.isfinite(float(task.loss(batch)))


def test_the_pipeline_boundary_is_refused():
    with pytest.raises(SuiteOptionError) as info:
        training_task("usad", 1, SEED, opts(boundary="pipeline"))
    assert info.value.key == "suite.boundary" and info.value.value == "pipeline"
    with pytest.raises(SuiteOptionError) as info:
        check_trainable("timeseries", ["usad"], opts(boundary="pipeline"))
    assert info.value.key == "suite.boundary" and "\n" not in str(info.value)
    check_trainable("timeseries", MODELS, opts())


def test_the_users_file_sets_the_channels_and_a_short_one_is_refused(tmp_path):
    path = tmp_path / "line3.csv"
    rows = LOOKBACK + 50  # enough for inference (look-back + 1), not for look-back + horizon + 1
    pd.DataFrame(np.random.default_rng(0).normal(size=(rows, 3)), columns=["a", "b", "c"]).to_csv(path, index=False)
    task = training_task("lstm_ae", 2, SEED, opts(data_path=str(path)))
    assert task.batch[0].shape == (2, 100, 3) and task.info["data"] == str(path)
    with pytest.raises(SuiteOptionError) as info:
        training_task("patchtst", 2, SEED, opts(data_path=str(path)))
    assert info.value.key == "data.path" and str(LOOKBACK + HORIZON + 1) in info.value.fix


# --- the losses -------------------------------------------------------------------------------------


def test_usad_phase_gradients_reach_only_the_parts_each_phase_trains():
    """Phase 1's gradient is the reference's loss1's on the encoder and decoder 1 and nothing on decoder 2;
    phase 2's is loss2's on the encoder and decoder 2 and nothing on decoder 1."""
    model = inference("usad", opts()).model
    x = inference("usad", opts()).inputs[0]
    w = x.flatten(1)
    n = 2
    w1 = model.decoder1(model.encoder(w))
    w2 = model.decoder2(model.encoder(w))
    w3 = model.decoder2(model.encoder(w1))
    loss1 = (w - w1).pow(2).mean() / n + (1 - 1 / n) * (w - w3).pow(2).mean()
    loss2 = (w - w2).pow(2).mean() / n - (1 - 1 / n) * (w - w3).pow(2).mean()
    phase1, phase2 = usad_phase_losses(model, x, n)
    torch.testing.assert_close(phase1, loss1)
    torch.testing.assert_close(phase2, loss2)
    parts = {"encoder": model.encoder, "decoder1": model.decoder1, "decoder2": model.decoder2}
    for phase, reference, trained, constant in ((phase1, loss1, ("encoder", "decoder1"), "decoder2"),
                                                (phase2, loss2, ("encoder", "decoder2"), "decoder1")):
        for name in trained:
            params = list(parts[name].parameters())
            got = torch.autograd.grad(phase, params, retain_graph=True)
            want = torch.autograd.grad(reference, params, retain_graph=True)
            for g, r in zip(got, want):
                torch.testing.assert_close(g, r)
        got = torch.autograd.grad(phase, list(parts[constant].parameters()), retain_graph=True, allow_unused=True)
        assert all(g is None for g in got)


def test_tranad_phases_are_the_models_own_arithmetic():
    instance = inference("tranad", opts())
    model, (x,) = instance.model, instance.inputs
    x1, x2, last = tranad_phases(model, x)
    reconstruction, score = model(x)
    torch.testing.assert_close(x2[0], reconstruction)
    torch.testing.assert_close(last[0], x[:, -1])
    assert x1.shape == x2.shape == (1, 2, 38)
    task = training_task("tranad", 2, SEED, opts())
    expected = 0.5 * (x1 - last).pow(2).mean() + 0.5 * (x2 - last).pow(2).mean()
    torch.testing.assert_close(task.loss((x,)), expected)
    assert task.optimizer == "AdamW" and task.optimizer_options == {"weight_decay": 1e-5}


def test_tcn_predicts_each_next_sample_as_its_score_and_forecast_do():
    instance = inference("tcn", opts())
    model, (x,) = instance.model, instance.inputs
    predicted = next_sample_predictions(model, x)
    forecast, score = model(x)
    torch.testing.assert_close(predicted[:, -1], forecast)
    torch.testing.assert_close((predicted[:, -2] - x[:, -1]).pow(2).mean(dim=1), score)
    task = training_task("tcn", 2, SEED, opts())
    torch.testing.assert_close(task.loss((x,)), (predicted[:, :-1] - x[:, 1:]).pow(2).mean())


def test_lstm_ed_trains_teacher_forced():
    instance = inference("lstm_ae", opts())
    model, (x,) = instance.model, instance.inputs
    forced = teacher_forced_reconstruction(model, x)
    free, _ = model(x)
    assert forced.shape == x.shape
    torch.testing.assert_close(forced[:, -1], free[:, -1])  # both from the encoder's state alone
    assert not torch.allclose(forced[:, :-1], free[:, :-1])  # then true samples in, not the model's own
