"""Learn a time-varying EQ from a conditioning signal with ConditionedSOSFilter.

An unknown "effect" is a resonant low-pass whose cutoff follows a slow control signal c (one value per
frame of 64 samples), like a DDSP filter driven by an envelope. Given white noise in, the effect's output,
and c, a ConditionedSOSFilter learns the map from c to per-frame biquads (stable by construction), which
are interpolated to sample rate.

    python examples/time_varying_eq.py             # defaults run in under a minute on CPU
    python examples/time_varying_eq.py --steps 3   # smoke test
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from ssm_lfilter.modules import ConditionedSOSFilter, TimeVaryingSOSFilter


def random_control(batch: int, frames: int) -> torch.Tensor:
    """Smooth control signals in [0, 1]: ``(B, 1, F)``."""
    knots = torch.rand(batch, 1, frames // 8 + 2)
    smooth = torch.nn.functional.interpolate(knots, size=frames, mode="linear", align_corners=True)
    return smooth.clamp(0, 1)


def true_effect_sos(control: torch.Tensor) -> torch.Tensor:
    """The effect to learn: ``c (B, 1, F)`` -> ``sos (B, F, 1, 6)``, a unit-DC-gain resonant low-pass with
    cutoff from 0.05 to 0.45 of Nyquist."""
    c = control[:, 0]
    r, theta = 0.97, math.pi * (0.05 + 0.4 * c)
    a1, a2 = -2 * r * torch.cos(theta), torch.full_like(c, r * r)
    b0 = 1 + a1 + a2
    zero = torch.zeros_like(c)
    return torch.stack([b0, zero, zero, torch.ones_like(c), a1, a2], -1)[..., None, :]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--frames", type=int, default=32, help="conditioning frames per example")
    parser.add_argument("--hop", type=int, default=64, help="samples per frame")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    effect = TimeVaryingSOSFilter(1, hop_length=args.hop)
    model = ConditionedSOSFilter(1, n_sections=1, hop_length=args.hop, hidden_channels=args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(args.steps, 1))
    T = args.frames * args.hop

    def batch():
        c = random_control(args.batch, args.frames)
        x = torch.randn(args.batch, T)
        with torch.no_grad():
            y = effect(x, true_effect_sos(c))
        return x, c, y

    def relative_error(x, c, y):
        return (model(x, c) - y).square().mean() / y.square().mean()

    gen_state = torch.get_rng_state()
    torch.manual_seed(4321)
    test = batch()
    torch.set_rng_state(gen_state)
    with torch.no_grad():
        initial = relative_error(*test).item()
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        loss = relative_error(*batch())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if not args.quiet and (step % 50 == 0 or step == args.steps):
            print(f"step {step:4d}  relative error {loss.item():.4f}", flush=True)
    with torch.no_grad():
        final = relative_error(*test).item()
    seconds = time.perf_counter() - start
    if not args.quiet:
        print(f"time-varying EQ: test relative error {initial:.3f} -> {final:.4f} "
              f"({10 * math.log10(max(final, 1e-12)):.1f} dB), {args.steps} steps in {seconds:.1f} s")
    return {"initial_error": initial, "final_error": final, "seconds": seconds}


if __name__ == "__main__":
    main()
