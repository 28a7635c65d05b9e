"""USAD's training step (Audibert et al., KDD 2020; manigalati/usad), beside the model (usad.py):
encoder and both decoders trained, Adam lr 1e-3 (the reference's ``torch.optim.Adam`` with its
default learning rate). Facts from the paper and the reference code, no code copied.

The reference trains in two phases per batch, with W the flattened window, AE1 = D1(E(.)),
AE2 = D2(E(.)) and n the epoch (1, 2, ...):

* phase 1, encoder and decoder 1 (its optimizer updates E and D1):
  ``(1/n) mse(W, AE1(W)) + (1 - 1/n) mse(W, AE2(AE1(W)))`` (reconstruct, and fool AE2);
* phase 2, encoder and decoder 2 (E and D2):
  ``(1/n) mse(W, AE2(W)) - (1 - 1/n) mse(W, AE2(AE1(W)))`` (reconstruct, and tell AE1's output from W).

Simplified (also in the task's ``info["simplified"]``): there are no epochs here, so n is fixed at 2
(both terms weigh 1/2; the cost does not depend on n). The reference steps two Adam optimizers in
turn, each after its own forward and backward; a TrainTask has one optimizer, so one step here
computes both phases' forwards (each what its loss needs) and one backward of their sum, with each
phase's gradient reaching only the parts its optimizer updates (the other decoder's parameters are
constants in that phase's graph), then one Adam step over E, D1 and D2: E gets both phases'
gradients at once instead of two updates in turn, and one set of Adam moments instead of two. The
recorded loss is phase 1's plus phase 2's (their adversarial terms cancel in value, not in gradient).

A separate module from the model's so that a change of the loss does not change the model code's
hash (bench.suites.base.code_hash), which keys the inference conversions' caches. torch is
imported only inside functions.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.suites.training import TrainTask, trainable

__all__ = ["EPOCH", "usad_task", "usad_phase_losses"]

EPOCH = 2  # the fixed n of the 1/n, 1 - 1/n weighting


def _constant(module: Any, x: Any) -> Any:
    """``module(x)`` with its parameters as constants: gradients reach ``x``, not the parameters."""
    from torch.func import functional_call

    return functional_call(module, {name: p.detach() for name, p in module.named_parameters()}, (x,))


def usad_phase_losses(model: Any, x: Any, n: int = EPOCH) -> tuple[Any, Any]:
    """Phase 1's and phase 2's losses on windows ``x`` (batch, window, channels), each differentiable
    only in the parts its phase trains (phase 1: encoder, decoder 1; phase 2: encoder, decoder 2)."""
    encoder, d1, d2 = model.encoder, model.decoder1, model.decoder2
    w = x.flatten(1)
    a = 1.0 / n
    w1 = d1(encoder(w))
    w3 = _constant(d2, encoder(w1))
    phase1 = a * (w - w1).pow(2).mean() + (1 - a) * (w - w3).pow(2).mean()
    z = encoder(w)
    w2 = d2(z)
    w3 = d2(encoder(_constant(d1, z)))
    phase2 = a * (w - w2).pow(2).mean() - (1 - a) * (w - w3).pow(2).mean()
    return phase1, phase2


def usad_task(model: Any, make_windows: Callable[..., Any], batch_size: int, seed: int) -> TrainTask:
    def loss(batch: tuple[Any, ...]) -> Any:
        (x,) = batch
        phase1, phase2 = usad_phase_losses(model, x.float())
        return phase1 + phase2

    return TrainTask(
        kind="backprop", modules={"encoder": model.encoder, "decoder1": model.decoder1, "decoder2": model.decoder2},
        parameters=trainable(model), batch=(make_windows(batch_size),), loss=loss, optimizer="Adam", lr=1e-3,
        info={"method": "USAD",
              "loss": f"phase 1 (encoder, decoder 1): (1/n) mse(W, AE1(W)) + (1 - 1/n) mse(W, AE2(AE1(W))); "
                      f"phase 2 (encoder, decoder 2): (1/n) mse(W, AE2(W)) - (1 - 1/n) mse(W, AE2(AE1(W))); "
                      f"n = {EPOCH}; the step's loss is their sum",
              "trained": ["encoder", "decoder1", "decoder2"], "frozen": [],
              "simplified": [f"no epochs: n fixed at {EPOCH} (both terms of each phase weigh 1/2)",
                             "one Adam optimizer and one step for both phases (the reference: two Adam optimizers, "
                             "E+D1 then E+D2, each after its own forward and backward); each phase's gradient "
                             "reaches only the parts its optimizer updates"]},
    )
