"""Which kernel variant the launchers use by default (each also takes an explicit argument).

- ``SSM_LFILTER_SINGLE_PASS``: single-pass kernels with a fixed-window look-back (``_lookback.py``):
  the signal is read once and the output written once, in one launch. ``1`` turns them on for every
  family, ``0`` selects the multi-pass kernels (chunk summaries, a carry scan, then a re-run of every
  chunk) everywhere. Unset, each family takes the variant measured faster on an H200
  (benchmarks/results/cuda-nvidia-h200-2026-11-27-single-pass): single pass for the LTI and
  time-varying kernels (2-8x faster), multi-pass for the diagonal kernels (its single pass ran at
  8% of copy bandwidth against 47-50%, and one configuration failed to compile with Triton 3.6).
- ``SSM_LFILTER_POWER_TABLE`` (default off): ``1`` makes the single-pass LTI kernels (forward,
  adjoint, cascades) load the companion matrix powers from a table a launch before the kernel writes
  (``power_table_setup``) instead of squaring them in every tile. It halves the order-4 kernels'
  float64 instructions, yet on an H200 every case ran slower with it
  (benchmarks/results/cuda-nvidia-h200-2026-11-28, ms with the table against without): the order-4
  forward 1.13 against 0.30 and adjoint 2.31 against 0.59, the order-2 forward 0.30 against 0.12
  and adjoint 0.44 against 0.33 (32 x 2^20), the order-2 adjoint on one 2^24 row 0.26 against 0.23,
  the 8-biquad cascade 0.63 against 0.61. So the tiles square, and the table stays a switch.
- ``SSM_LFILTER_PERSISTENT`` (default off): the single-pass LTI forward (and cascade) launches a
  few programs an SM that loop over tiles, each taking its next ticket and fetching a sample of every
  lane of that tile before working on the current one (``lti_single_pass``), instead of one program a
  tile. Slower on an H200 (2026-11-28: order 1 0.140 against 0.109 ms, 4096 x 4096 0.180 against
  0.078, the 8-biquad cascade 0.754 against 0.627).
- ``SSM_LFILTER_REGISTER_CAP`` (default on): launches that ptxas compiles to more registers a thread
  than they need pass ``maxnreg``, a cap at which they keep every value in registers (compiled for
  sm_90, no spill) and more warps fit an SM: the kernels that take one say so where they launch.
  ``0`` launches them uncapped. (The persistent launch's cap, ``persistent_max_registers``, belongs
  to that launch and stays under ``SSM_LFILTER_PERSISTENT``.) No measurable effect on an H200
  (2026-11-28: within 1% either way); the LTI caps apply only with the power table.
- ``SSM_LFILTER_LANE_LOADS`` (default off): the single-pass LTI forward and backward (and the
  cascades'), and the time-varying forward at orders 1-2, load and store each lane's run in 16-byte
  vectors from the thread that runs the lane
  (``kernels/_lane_tiles.py``) instead of a coalesced tile whose layout changes through shared
  memory: fewer instructions and no barriers (sm_90), half-used sectors per load instruction.
  Slower on an H200 in all but the 8-biquad cascade (2026-11-28: order 1 0.180 against 0.109 ms,
  the order-2 adjoint 0.468 against 0.437; the cascade 0.588 against 0.627).
- ``SSM_LFILTER_LANE_FLOAT32`` (default off): the single-pass LTI forward, the LTI cascade and their
  fused backwards run
  their lanes' recurrences (a lane's zero-state run and its re-run, the part that grows with the
  samples) in float32 on float32 data, instead of float64; the lane scan, the look-back and every
  carried state stay float64, and each lane restarts from its float64 start state, so rounding
  does not build up past a lane of ``C`` samples. The aim: a quarter of the float64 conversions a
  sample, and float32's issue rate and latency in the recurrences (``docs/kernels-single-pass.md``, "Float32
  lanes"). Its accuracy is a float32 recurrence's over one lane, not float64's: in
  ``tests/test_lane_float32.py`` biquads at radius 0.99-0.999 land 1.3 to 10 times closer to float64
  than a sequential float32 recurrence, and up to 300 times farther than the float64 lanes. The
  fused backward takes it too (its walk's products and a lane's sums in float32, the sums over
  lanes and tiles in float64). Not yet timed on a GPU.
- One warp a tile at orders 3-4 (a 4 x 4 state; not a switch, ``one_warp_tiles``): in float32 on a
  GPU, the single-pass LTI forward takes 32 lanes of 64 samples and the fused backward 32 lanes of 32
  (the same tiles, half the threads): every thread squares the tile's matrix powers whatever its lane
  length, so longer lanes spread them over twice the samples. On an H200 (2026-11-28, 32 x 2^20,
  order 4) the forward ran 0.228 against 0.296 ms and the backward 0.420 against 0.591. Explicit
  ``block_size``, ``lanes`` or ``window_tiles`` arguments keep their meaning; float64 keeps the wider
  tiles (a 64-sample float64 lane alone would take 128 registers a thread); order 3 takes them
  untimed. Only with 32 rows or more and no opt-in tile variant (as timed): with fewer rows the
  look-back window widens and the one-warp forward spilled 96-104 bytes at 8 rows for sm_90 (triton
  3.6.0; ``benchmarks/results/sm90-compile-2026-11-29/``), untimed, where the wider tiles spill
  nothing (seen since 2026-11-29, when the compile tools' ``meta`` captures began to take the GPU's
  choice).
- 64-sample lanes for float32 cascades from rest on a GPU (not a switch, ``cascade_lane_length``): the
  single-pass cascade forward of two or more sections without heads or last outputs; 32 otherwise.
  On an H200 the 8-biquad cascade ran 0.478 against 0.610 ms (32 x 2^20). ``block_size`` decides
  where given.
- ``SSM_LFILTER_TILE_IO`` (default on): in the multi-pass LTI/time-varying kernels, coalesced tile
  chunk passes (one (chunks, C) tile load and store per program) instead of per-lane strided access.

The switches exist so that one GPU run can time every variant side by side, and so that a Triton
version that fails to compile a variant has a way out.
"""
from .._env import getenv


def _flag(name: str, requested: bool | None) -> bool:
    """A default-on switch: the argument, else on unless the variable is "0"."""
    if requested is not None:
        return bool(requested)
    return getenv(name, "1") != "0"


def _opt_in(name: str, requested: bool | None) -> bool:
    """A default-off switch: the argument, else on only when the variable is "1"."""
    if requested is not None:
        return bool(requested)
    return getenv(name, "0") == "1"


def tile_io(requested: bool | None) -> bool:
    return _flag("SSM_LFILTER_TILE_IO", requested)


def power_table(requested: bool | None) -> bool:
    return _opt_in("SSM_LFILTER_POWER_TABLE", requested)


def register_cap(requested: bool | None) -> bool:
    return _flag("SSM_LFILTER_REGISTER_CAP", requested)


def lane_loads(requested: bool | None) -> bool:
    return _opt_in("SSM_LFILTER_LANE_LOADS", requested)


def persistent(requested: bool | None) -> bool:
    return _opt_in("SSM_LFILTER_PERSISTENT", requested)


def lane_float32(requested: bool | None) -> bool:
    return _opt_in("SSM_LFILTER_LANE_FLOAT32", requested)


def cascade_lane_length(sections: int, dtype, device_type: str, heads_or_ends: bool) -> int:
    """The samples a lane of the single-pass cascade forward (``kernels/sos.py``) takes by default: 64
    for a cascade of two or more sections from rest (no heads, no last outputs) in float32 on a GPU,
    else 32. On an H200 the 8-biquad cascade ran 0.481 against 0.627 ms and 0.478 against 0.610 in two
    leases (results/cuda-nvidia-h200-2026-11-28 and -host-fused, 32 x 2^20): every section repeats
    a tile's lane scan and matrix powers, which longer lanes spread over twice the samples (sm_90: 209
    registers, no spill, 8 warps an SM). Cascades of 2-7 sections take it untimed. Heads and ends
    keep 32: that build already takes 255 registers at 32; float64 keeps it too. "A GPU" is any
    device but the CPU (the interpreter): ``meta`` tensors, on which the compile tools capture
    launches (``benchmarks/kernel_resources.py``, ``benchmarks/prebuild_cache.py``), see the GPU's
    choice."""
    import torch

    if sections >= 2 and dtype == torch.float32 and device_type != "cpu" and not heads_or_ends:
        return 64
    return 32


def one_warp_tiles(state_order: int, dtype, device_type: str, rows: int, variants: bool = False) -> bool:
    """Whether a single-pass LTI launch of this state order (``max(N, M)`` for the backward, ``N`` for
    the forward), compute dtype, device and row count takes the one-warp tiles (see above) by default;
    any device but the CPU counts as a GPU, as in ``cascade_lane_length``.

    Only where they were timed: 32 rows or more (a look-back window of at most 32 tiles) and none
    of the opt-in tile variants (``variants``: lane loads, the power table, the persistent launch).
    Compiled for sm_90 (triton 3.6.0) the one-warp forward spills 16 bytes at order 3 and 24 at
    order 4 with 32 rows, and ran faster on an H200 all the same; with fewer rows the window widens
    (64 tiles at 16 rows, 128 at 8 or one) and the forward spilled 96 (order 3) and 104 (order 4)
    bytes at 8 rows (triton 3.6.0; 48-96 under 3.7.1, whose backward spilled 8-24 too), untimed,
    where the wider tiles spill nothing (``benchmarks/results/sm90-compile-2026-11-29/``)."""
    import torch

    return (state_order >= 3 and dtype == torch.float32 and device_type != "cpu" and rows >= 32
            and not variants)


def tile_variants(lane_loads_requested: bool | None, power_table_requested: bool | None,
                  persistent_requested: bool | None = False) -> bool:
    """Whether any opt-in tile variant of the single-pass LTI kernels is on (argument or environment)."""
    return (lane_loads(lane_loads_requested) or power_table(power_table_requested)
            or persistent(persistent_requested))


# The default of each family when neither the argument nor the environment decides.
_SINGLE_PASS_DEFAULT = {"lti": True, "time_varying": True, "diagonal": False}


def single_pass(requested: bool | None, family: str) -> bool:
    if requested is not None:
        return bool(requested)
    env = getenv("SSM_LFILTER_SINGLE_PASS", "").strip()
    if env:
        return env != "0"
    return _SINGLE_PASS_DEFAULT[family]
