#!/usr/bin/env bash
# The two device calls of a lent GPU session (15 minutes of device time): benchmarks/README.md,
# "What the next GPU run measures first". From the repository root on the GPU machine:
#
#   bash benchmarks/gpu_session.sh 1 "$OUT"   # run with the device tool's timeout_s=540
#   bash benchmarks/gpu_session.sh 2 "$OUT"   # at once, while the machine is warm: timeout_s=270
#
# Part 1: the compile workers, the variant table (seven families) and the GPU test tier. Part 2: the
# public functions against a copy, the host-time layers and CUDA graph replays, then the benchmark
# suite's target sweeps. Each part's budgets sum to under its timeout; each stage
# saves report.md as it ends, and the console goes to console-<part>.log beside it.
set -uo pipefail
part=${1:?part 1 or 2}
out=${2:?output folder}
[[ $part == 1 || $part == 2 ]] || { echo "gpu_session.sh: expected part 1 or 2, got $part" >&2; exit 2; }
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# The interpreter that holds torch: on the GPU machines that is python3 in a virtual environment
# (2026-11-28: a `python` symlinked to it left the environment and found no numpy), so take the
# first of python3 and python that imports torch and numpy, and use it for the install and the run.
py=
for c in python3 python; do
  if command -v "$c" >/dev/null && "$c" -c "import torch, numpy" 2>/dev/null; then py=$c; break; fi
done
[[ -n $py ]] || { echo "gpu_session.sh: expected a python3 or python that imports torch and numpy, found none" >&2; exit 1; }
# the same python as below, so kernels/ is importable as ssm_lfilter.kernels
"$py" -m pip install -q --no-build-isolation --no-deps -e . || exit 1
# A Triton cache compiled for sm_90 on the CPU machine (benchmarks/prebuild_cache.py; the device
# tool's carry brings .triton-cache-sm90): used when this machine's Triton is the one that built it,
# so the compile workers and the first launches read kernels instead of compiling them. Part 2 finds
# it installed by part 1 (install again only fills in paths already filled).
prebuilt=.triton-cache-sm90
if [[ -f $prebuilt/manifest.json ]] && "$py" benchmarks/prebuild_cache.py install "$prebuilt" | tee -a "$out/prebuilt-cache.log"; then
  export TRITON_CACHE_DIR=$PWD/$prebuilt
else
  prebuilt=
fi
# Budgets from the second lease of 2026-11-28 (results/cuda-nvidia-h200-2026-11-28-host-fused): the
# compile workers took 139 s for ten families, the variant table about 95 s, and the GPU test tier did
# not finish in 160 s (cold compiles of the raw-coefficient kernels at the tests' shapes; 146 s whole
# in the lease before, once compiled). So part 1 times the families with the float32-lane rows (lti,
# lti_adjoint, sos, sos_adjoint and public, where they come first after the default; sos_zi and
# tv_sos_adjoint, never timed, wait), each row also as a CUDA graph replay, and gives the test tier
# 220 s. The table times the families in the order given: public first (lfilter and sosfilt with
# and without float32 lanes decide the defaults), so a budget that runs out cuts the others; the
# time-varying families come last (float64 carries against float32 carries, the default until
# 2026-11-29; the suite's gpu_tv2 sweep in part 2 times them through the public function anyway).
# 40 s to start, 510 s and 250 s of commands, the transfers: about 820 s of the 900.
case $part in
1) timeout 510 "$py" benchmarks/gpu_check.py --out "$out" \
     --families public sos lti lti_adjoint sos_adjoint tv tv_adjoint \
     --warm-workers 16 --warm-budget 135 --variants-budget 135 --family-budget 45 \
     --test-budget 220 --skip-suite 2>&1 | tee "$out/console-1.log" ;;
2) timeout 250 "$py" benchmarks/gpu_check.py --out "$out" --skip-variants --skip-tests --bandwidth --host \
     --stage-budget 50 --sweeps gpu_torchaudio gpu_first_order gpu_lti gpu_sos8 gpu_tv2 gpu_long 2>&1 | tee "$out/console-2.log" ;;
esac
rc=$?
[[ -n $prebuilt ]] && "$py" benchmarks/prebuild_cache.py report "$prebuilt" | tee -a "$out/prebuilt-cache.log"
exit $rc
