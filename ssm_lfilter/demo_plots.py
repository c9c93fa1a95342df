"""PNG figures for the demo, drawn with matplotlib's Agg canvas (no display, no pyplot global state)."""
from __future__ import annotations

import os

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig: Figure, path: str) -> str:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def write_demo_plots(out: str, w: np.ndarray, h_target: np.ndarray, h_learned: np.ndarray,
                     losses: np.ndarray, title: str) -> dict:
    """Write ``magnitude.png``, ``phase.png`` and ``loss.png`` into ``out``; returns their paths."""
    f = w / np.pi
    files = {}

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.plot(f, 20 * np.log10(np.abs(h_target) + 1e-12), label="target", lw=2.5, alpha=0.6)
    ax.plot(f, 20 * np.log10(np.abs(h_learned) + 1e-12), "--", label="learned SOSFilter", lw=1.5)
    ax.set(xlabel="frequency (x Nyquist)", ylabel="magnitude (dB)", title=f"magnitude response: {title}")
    ax.set_ylim(bottom=max(-100.0, ax.get_ylim()[0]))
    ax.grid(alpha=0.3)
    ax.legend()
    files["magnitude"] = _save(fig, os.path.join(out, "magnitude.png"))

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    ax.plot(f, np.unwrap(np.angle(h_target)), label="target", lw=2.5, alpha=0.6)
    ax.plot(f, np.unwrap(np.angle(h_learned)), "--", label="learned SOSFilter", lw=1.5)
    ax.set(xlabel="frequency (x Nyquist)", ylabel="phase (rad, unwrapped)", title=f"phase response: {title}")
    ax.grid(alpha=0.3)
    ax.legend()
    files["phase"] = _save(fig, os.path.join(out, "phase.png"))

    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    if len(losses):
        ax.semilogy(np.arange(1, len(losses) + 1), np.maximum(losses, 1e-16))
    ax.set(xlabel="step", ylabel="relative squared error", title="training loss")
    ax.grid(alpha=0.3, which="both")
    files["loss"] = _save(fig, os.path.join(out, "loss.png"))
    return files
