#!/usr/bin/env bash
# The GPU checks, as one script for a lent GPU machine (no internet there): install the wheels
# carried in .whl/ (see docs/gpu.md), build exoflow, run the tests that touch the GPU paths (the
# dashboard's GPU memory among them) and benchmark the profile job with NumPy and CuPy kernels.
#     bash scripts/gpu_check.sh [LOG_DIR]
set -uo pipefail
log=${1:-/tmp/gpu-check}
mkdir -p "$log"
step() { echo; echo "=== $* ($(date +%T))"; }
export PYTHONUNBUFFERED=1

step install
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
export PYTHONPATH=/tmp/site
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . || exit 1
nvidia-smi -L
python3 -c "import cupy, dask, distributed, numpy, pyarrow; print('cupy', cupy.__version__, 'devices',
cupy.cuda.runtime.getDeviceCount(), '| dask', dask.__version__, '| numpy', numpy.__version__, '| pyarrow',
pyarrow.__version__)"
python3 -m exoflow.cli info 2>&1 | tail -n 12

step "tests that touch the GPU paths"
timeout 300 python3 -m pytest -q -p no:cacheprovider -rs tests/test_gpu.py tests/test_profile.py \
    tests/test_bench.py tests/test_remote_cluster.py 2>&1 | tee "$log/tests-gpu.log" | tail -n 15

step "benchmark: profile with NumPy and CuPy kernels"
python3 -c "import sys; sys.path.insert(0, 'benchmarks'); import bench_profile; bench_profile.make_gen('/tmp/gen')"
timeout 240 python3 benchmarks/bench_profile.py --runs 3 /tmp/gen 2>&1 | tee "$log/bench-profile.log"

step "exoflow bench: the embedded cluster (cpu) against a dask-cuda cluster (gpu)"
timeout 180 python3 -m exoflow.cli bench profile /tmp/gen --modes cpu,gpu --repeats 3 --no-dashboard \
    --save "$log/bench.json" 2>&1 | tail -n 12

step done
