#!/usr/bin/env bash
# The GPU check on an air-gapped GPU node: install raysweep's missing dependencies from the
# wheelhouse without a network, then run bench/gpu.py end to end (at most 8 minutes).
#
#   bench/gpu_offline.sh RESULTS_DIR                 # install what is there, run the check
#   bench/gpu_offline.sh --install-only              # install only (the first of two transfers)
#
# The node has Python 3.12 with torch, torchvision, timm, numpy, pandas, scikit-learn,
# psutil, nvidia-ml-py and pyyaml. The rest travels as the wheelhouse that
# `python cluster/wheelhouse.py wheels/ --pack bench/wheelhouse` builds on a machine with
# PyPI: xz-compressed wheels in bench/wheelhouse/part-N/ (each part under 46 MiB, since a run
# takes at most 64 MiB of files; all parts together do not fit one run). Each call installs
# the parts it finds into $GPU_DEPS (default .gpu-deps/, kept between calls on the same
# machine), so part 1 can come with one call and part 2 with the next:
#
#   call 1: carry bench/wheelhouse/part-1:  bench/gpu_offline.sh --install-only
#   call 2: carry bench/wheelhouse/part-2:  bench/gpu_offline.sh results/
#
# Figures: printed, and written to RESULTS_DIR (gpu.txt, the whole output; gpu.json, every
# figure). Exit status: gpu.py's (77: no CUDA GPU visible).
set -euo pipefail

here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
install_only=0
if [[ "${1:-}" == "--install-only" ]]; then
    install_only=1
elif [[ $# -ne 1 ]]; then
    echo "usage: bench/gpu_offline.sh RESULTS_DIR | --install-only" >&2
    exit 2
fi
python="${PYTHON:-python3}"
wheelhouse="${WHEELHOUSE:-$here/bench/wheelhouse}"
deps="${GPU_DEPS:-$here/.gpu-deps}"
mkdir -p "$deps/wheels" "$deps/site"

# 1. the parts that came with this call, decompressed (Python's lzma: no xz tool needed)
"$python" - "$wheelhouse" "$deps/wheels" <<'EOF'
import lzma, sys
from pathlib import Path
src, dest = Path(sys.argv[1]), Path(sys.argv[2])
for packed in sorted(src.glob("part-*/*.whl.xz")):
    out = dest / packed.name[: -len(".xz")]
    if not out.exists():
        out.write_bytes(lzma.decompress(packed.read_bytes()))
print(f"wheelhouse: {len(list(dest.glob('*.whl')))} wheels in {dest}")
EOF

# 2. installed into a target folder the node's Python puts in front of its own packages:
#    no index, no dependency resolution (the wheelhouse is the set; the node has the rest)
start=$(date +%s)
new=()
for wheel in "$deps"/wheels/*.whl; do
    [[ -e "$deps/site/.installed/$(basename "$wheel")" ]] || new+=("$wheel")
done
if (( ${#new[@]} )); then
    "$python" -m pip install --quiet --no-index --find-links "$deps/wheels" --no-deps --target "$deps/site" --upgrade "${new[@]}"
    mkdir -p "$deps/site/.installed" && for wheel in "${new[@]}"; do touch "$deps/site/.installed/$(basename "$wheel")"; done
fi
echo "installed ${#new[@]} new wheel(s) into $deps/site in $(( $(date +%s) - start )) s"
(( install_only )) && exit 0

# 3. the check; Ray's workers inherit PYTHONPATH, so they see the same packages
results="$1"
mkdir -p "$results"
export PYTHONPATH="$deps/site:$here${PYTHONPATH:+:$PYTHONPATH}"
export MLFLOW_DISABLE_TELEMETRY=true DO_NOT_TRACK=true RAY_USAGE_STATS_ENABLED=0  # nothing to phone home to
set +e
timeout 480 "$python" bench/gpu.py --results "$results" 2>&1 | tee "$results/gpu.txt"
status=${PIPESTATUS[0]}
set -e
echo "gpu_offline: exit $status; figures in $results/gpu.json, output in $results/gpu.txt"
exit "$status"
