#!/usr/bin/env bash
# The two device calls of a lent GPU session (15 minutes of device time): benchmarks/README.md,
# "What the next GPU run measures first". From the repository root on the GPU machine:
#
#   bash benchmarks/gpu_session.sh 1 "$OUT"   # run with the device tool's timeout_s=520
#   bash benchmarks/gpu_session.sh 2 "$OUT"   # at once, while the machine is warm: timeout_s=320
#
# Part 1: the compile workers, the variant table (nine families), the tile timelines, the GPU test
# tier and the public functions against a copy. Part 2: the host-time layers and CUDA graph replays,
# then the benchmark suite's target sweeps. Each part's budgets sum to under its timeout; each stage
# saves report.md as it ends, and the console goes to console-<part>.log beside it.
set -uo pipefail
part=${1:?part 1 or 2}
out=${2:?output folder}
[[ $part == 1 || $part == 2 ]] || { echo "gpu_session.sh: expected part 1 or 2, got $part" >&2; exit 2; }
mkdir -p "$out"
export PYTHONUNBUFFERED=1
# the same python as below, so kernels/ is importable as ssm_lfilter.kernels
python -m pip install -q --no-build-isolation --no-deps -e . || exit 1
case $part in
1) timeout 480 python benchmarks/gpu_check.py --out "$out" \
     --families lti diag diag_adjoint sos sos_adjoint lti_adjoint tv tv_adjoint tv_sos \
     --warm-workers 16 --warm-budget 100 --variants-budget 200 --family-budget 45 \
     --timeline --stage-budget 40 --test-budget 90 --bandwidth --skip-suite 2>&1 | tee "$out/console-1.log" ;;
2) timeout 290 python benchmarks/gpu_check.py --out "$out" --skip-variants --skip-tests --host --stage-budget 40 \
     --sweeps gpu_torchaudio gpu_first_order gpu_lti gpu_sos8 gpu_tv2 gpu_long 2>&1 | tee "$out/console-2.log" ;;
esac
