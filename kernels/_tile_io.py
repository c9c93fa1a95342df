"""Which chunk-pass variant the launchers use by default.

The coalesced tile kernels (one (chunks, C) tile load and store per program) replace per-lane
strided access. ``SSM_LFILTER_TILE_IO=0`` selects the older per-lane kernels, so one GPU run can
time both and a Triton version that fails to compile the tile kernels has a way out.
"""
import os


def tile_io(requested: bool | None) -> bool:
    if requested is not None:
        return requested
    return os.environ.get("SSM_LFILTER_TILE_IO", "1") != "0"
