"""The time series models (bench.suites.models.timeseries): parameter counts at full size on the meta
device against the papers' layer tables (and, where a paper publishes one, its count), the outputs'
arithmetic on small real forward passes, and seeded weights. ONNX parity is in test_timeseries_onnx.py."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from bench.suites.models.timeseries import dlinear, lstm_ae, patchtst, tcn, tranad, usad  # noqa: E402


def params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(builder, **kw) -> torch.nn.Module:
    with torch.device("meta"):
        return builder(seed=0, **kw)


def linear(n_in: int, n_out: int) -> int:
    return n_in * n_out + n_out


def test_dlinear_matches_the_papers_count():
    # Zeng et al. (AAAI 2023), efficiency table: DLinear has 139.7K parameters at L=96, T=720.
    assert params(on_meta(dlinear.build_dlinear, lookback=96, horizon=720)) == 139_680
    assert params(on_meta(dlinear.build_dlinear, channels=51)) == 2 * linear(336, 96) == 64_704


def test_tcn_matches_the_papers_sequential_mnist_size():
    # Bai et al. (2018), Table 1: the sequential MNIST TCN (8 levels of 25 channels, kernel 7, one input
    # channel, 10 classes) has "70K" parameters; weight normalisation's g counts one per output channel.
    with torch.device("meta"):
        model = tcn.TCN(1, 25, 8, 7)
    first = (1 * 25 * 7 + 25 + 25) + (25 * 25 * 7 + 25 + 25) + linear(1, 25)
    later = 2 * (25 * 25 * 7 + 25 + 25)
    blocks = params(model.blocks)
    assert blocks == first + 7 * later
    total = blocks + linear(25, 10)  # the paper's classifier in place of our 1x1 prediction head
    assert total == 66_910 and abs(total - 70_000) / 70_000 < 0.05
    # The suite's TCN: 6 blocks of 64, kernel 3, 38 channels in and a 1x1 head back to 38.
    suite = on_meta(tcn.build_tcn, channels=38)
    expected = (38 * 64 * 3 + 64 + 64) + (64 * 64 * 3 + 64 + 64) + linear(38, 64) \
        + 5 * 2 * (64 * 64 * 3 + 64 + 64) + linear(64, 38)
    assert params(suite) == expected


def test_patchtst_count_from_the_etth1_layer_table():
    # ETTh1 script: look-back 336, patch 16 stride 8 (42 patches with the end padding), width 16, 4 heads,
    # feed-forward 128, 3 layers, horizon 96; RevIN's affine is 2 per channel.
    d, ff, patches = 16, 128, 42
    layer = 4 * linear(d, d) + 2 * (2 * d) + linear(d, ff) + linear(ff, d)
    expected = linear(16, d) + patches * d + 3 * layer + linear(patches * d, 96) + 2 * 7
    assert params(on_meta(patchtst.build_patchtst, channels=7)) == expected == 81_742


def test_usad_and_tranad_and_lstm_counts_follow_their_layer_tables():
    w, z = 12 * 51, 12 * 100  # SWaT: 51 channels, the reference's window 12 and latent 100 per sample
    enc = linear(w, w // 2) + linear(w // 2, w // 4) + linear(w // 4, z)
    dec = linear(z, w // 4) + linear(w // 4, w // 2) + linear(w // 2, w)
    assert params(on_meta(usad.build_usad, channels=51)) == enc + 2 * dec
    c = 38
    d = 2 * c
    mha = 3 * d * d + 3 * d + linear(d, d)
    ff = linear(d, 16) + linear(16, d)
    assert params(on_meta(tranad.build_tranad, channels=c)) == (mha + ff) + 2 * (2 * mha + ff) + linear(d, c)
    h = 64
    lstm = 4 * h * (c + h) + 8 * h  # input and recurrent weights, two bias vectors
    assert params(on_meta(lstm_ae.build_lstm_ae, channels=c, window=100)) == 2 * lstm + linear(h, c)


def small_window(batch: int, window: int, channels: int, seed: int = 1) -> torch.Tensor:
    return torch.randn((batch, window, channels), generator=torch.Generator().manual_seed(seed))


def test_reconstruction_scores_are_the_documented_errors():
    x = small_window(3, 6, 4)
    with torch.no_grad():
        model = lstm_ae.build_lstm_ae(channels=4, window=6, hidden=8)
        rec, score = model(x)
        assert rec.shape == x.shape
        torch.testing.assert_close(score, (rec - x).pow(2).mean(dim=(1, 2)))
        # Reverse-order decoding: the last sample comes straight from the encoder's final state.
        _, (h, _) = model.encoder(x)
        torch.testing.assert_close(rec[:, -1], model.output(h[0]))

        model = usad.build_usad(channels=4, window=6, latent_per_step=5)
        w1, score = model(x)
        flat = x.flatten(1)
        w2 = model.decoder2(model.encoder(w1.flatten(1)))
        torch.testing.assert_close(score, 0.5 * (flat - w1.flatten(1)).pow(2).mean(1) + 0.5 * (flat - w2).pow(2).mean(1))
        assert float(w1.min()) > 0 and float(w1.max()) < 1  # the decoders end in a sigmoid

        model = tranad.build_tranad(channels=4, window=6)
        rec, score = model(x)
        assert rec.shape == (3, 4)
        torch.testing.assert_close(score, (rec - x[:, -1]).pow(2).mean(dim=1))


def test_tcn_is_causal_and_scores_the_newest_sample():
    model = tcn.build_tcn(channels=3, hidden=8, levels=3)
    x = small_window(2, 20, 3)
    with torch.no_grad():
        forecast, score = model(x)
        changed = x.clone()
        changed[:, -1] += 5.0
        # Steps before the last cannot see it: the prediction of the last sample is unchanged ...
        prefix = model.head(model.blocks(changed[:, :-1].transpose(1, 2)))[:, :, -1]
        torch.testing.assert_close(score, (prefix - x[:, -1]).pow(2).mean(dim=1))
        # ... while the forecast of the next one depends on it.
        assert not torch.allclose(model(changed)[0], forecast)


def test_forecasters_follow_the_data_units():
    """RevIN makes PatchTST equivariant to a per-channel affine change of units; DLinear is affine."""
    x = small_window(2, 48, 3)
    scale, shift = torch.tensor([2.0, 0.5, 10.0]), torch.tensor([100.0, -3.0, 0.0])
    with torch.no_grad():
        model = patchtst.build_patchtst(channels=3, lookback=48, horizon=8, layers=1)
        torch.testing.assert_close(model(x * scale + shift), model(x) * scale + shift, rtol=1e-4, atol=1e-3)
        model = dlinear.build_dlinear(lookback=48, horizon=8)
        zero = model(torch.zeros_like(x))  # the biases: the model is affine in its input
        torch.testing.assert_close(model(2 * x) + zero, 2 * model(x), rtol=1e-5, atol=1e-5)
        flat = torch.full((1, 48, 1), 3.0)
        torch.testing.assert_close(dlinear.moving_average(flat, 25), flat)


def test_tranad_attention_is_multihead_attention():
    """The written-out attention computes what nn.MultiheadAttention does with the same parameters."""
    ours = tranad._Attention(8, 4)
    reference = torch.nn.MultiheadAttention(8, 4)
    with torch.no_grad():
        reference.in_proj_weight.copy_(ours.in_proj.weight)
        reference.in_proj_bias.copy_(ours.in_proj.bias)
        reference.out_proj.weight.copy_(ours.out_proj.weight)
        reference.out_proj.bias.copy_(ours.out_proj.bias)
        q, kv = torch.randn(1, 3, 8), torch.randn(5, 3, 8)
        torch.testing.assert_close(ours(q, kv, kv), reference(q, kv, kv, need_weights=False)[0])


def test_weights_are_seeded():
    a, b, c = (usad.build_usad(seed=s, channels=3, window=4, latent_per_step=2) for s in (0, 0, 1))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
