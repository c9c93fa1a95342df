"""Command line: ``ssm-lfilter demo`` / ``python -m ssm_lfilter demo`` (system identification demo)."""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ssm-lfilter", description="Differentiable IIR filtering for PyTorch.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    demo = sub.add_parser(
        "demo", help="fit an SOSFilter to a target filter from noise (system identification)",
        description="Drive a target filter with white noise and fit a polar SOSFilter to its output by "
                    "gradient descent; write magnitude/phase/loss PNGs and print a summary.")
    demo.add_argument("--target", default=None,
                      help="target filter: FTYPE:ORDER:WN[:BTYPE][:rp=DB][:rs=DB] (scipy design, e.g. "
                           "butter:4:0.2 or cheby1:6:0.2-0.4:bandpass), or a .npy/.txt/.csv file with an "
                           "(n_sections, 6) sos array (default: ellip:4:0.3, rp=1 dB, rs=40 dB)")
    demo.add_argument("--out", default="./ssm_lfilter_demo", help="output folder (default: %(default)s)")
    demo.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    demo.add_argument("--steps", type=int, default=500, help="optimisation steps (default: %(default)s)")
    demo.add_argument("--batch", type=int, default=8, help="noise signals per step (default: %(default)s)")
    demo.add_argument("--length", type=int, default=4096, help="samples per signal (default: %(default)s)")
    demo.add_argument("--lr", type=float, default=0.15, help="Adam learning rate (default: %(default)s)")
    demo.add_argument("--sections", type=int, default=None,
                      help="biquads in the learned filter (default: as many as the target)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        try:
            result = run_demo(target=args.target, out=args.out, device=args.device, steps=args.steps,
                              batch=args.batch, length=args.length, lr=args.lr, sections=args.sections,
                              seed=args.seed, progress=not args.no_progress)
        except (ValueError, RuntimeError, ImportError, OSError, ArithmeticError) as err:
            print(f"ssm-lfilter demo: error: {err}", file=sys.stderr)
            return 2
        print(result.summary())
        for name in ("magnitude", "phase", "loss"):
            print(f"  wrote {result.files[name]}")
        return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
