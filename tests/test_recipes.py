"""cluster/: the recipes for many hosts (systemd units, SLURM through dask-jobqueue, Kubernetes through
the dask-kubernetes operator), run where this machine can run them and validated where it cannot."""
from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import exoflow, free_port, read_dataset

CLUSTER = Path(__file__).resolve().parents[1] / "cluster"
UNITS = CLUSTER / "systemd"
SHARED_CONFIG = CLUSTER / "dask.yaml"
JOBS = ("inventory", "checksum", "dedup", "scan", "codestats", "profile")


# ---- plain hosts: systemd units ----------------------------------------------------------------

def _unit(name: str) -> configparser.SectionProxy:
    """The [Service] section of cluster/systemd/NAME (keys case-sensitive, values as written)."""
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(UNITS / name)
    return parser["Service"]


def _unit_env(name: str) -> dict[str, str]:
    """The unit's Environment= settings, plus the shipped worker.env where the unit reads it."""
    service = _unit(name)
    env = dict(kv.split("=", 1) for kv in shlex.split(service.get("Environment", "")))
    if "EnvironmentFile" in service:
        lines = (UNITS / "worker.env").read_text().splitlines()
        env.update(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return env


def _exec_start(name: str, env: dict[str, str]) -> list[str]:
    """ExecStart split into words as systemd does: ``$VAR`` becomes the value's words, ``${VAR}`` one word."""
    words: list[str] = []
    for word in shlex.split(_unit(name)["ExecStart"]):
        m = re.fullmatch(r"\$\{(\w+)\}|\$(\w+)", word)
        words += [env[m[1]]] if m and m[1] else env[m[2]].split() if m else [word]
    return words


def _options(command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")}


def test_units_pass_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    dask_cli = Path(sys.executable).with_name("dask")    # the units name /opt/exoflow/bin/dask: not here
    assert dask_cli.exists()
    for name in ("exoflow-scheduler.service", "exoflow-worker.service"):
        text = (UNITS / name).read_text()
        assert "/opt/exoflow/bin/dask " in text
        (tmp_path / name).write_text(text.replace("/opt/exoflow/bin/dask ", f"{dask_cli} "))
    r = subprocess.run(["systemd-analyze", "verify", *map(str, tmp_path.glob("*.service"))],
                       capture_output=True, text=True, timeout=60)
    # unknown keys and bad values are warnings (exit 0): none is allowed
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_units_run_dask_with_exoflow_settings():
    from distributed.cli import dask_scheduler, dask_worker
    for name, command, sub in (("exoflow-scheduler.service", dask_scheduler.main, "scheduler"),
                               ("exoflow-worker.service", dask_worker.main, "worker")):
        service, env = _unit(name), _unit_env(name)
        argv = _exec_start(name, env)
        assert argv[:2] == ["/opt/exoflow/bin/dask", sub]
        flags = {a for a in argv if a.startswith("--")}
        assert flags <= _options(command), flags - _options(command)
        assert env["DASK_CONFIG"] == "/etc/exoflow/dask.yaml"
        assert service["User"] == service["Group"] == "exoflow" and service["Restart"] == "always"
    scheduler = _exec_start("exoflow-scheduler.service", {})
    assert scheduler[scheduler.index("--preload") + 1] == "exoflow.dashboard"
    assert "--scheduler-file" in scheduler
    worker = _exec_start("exoflow-worker.service", _unit_env("exoflow-worker.service"))
    assert worker[2] == "tcp://scheduler.example.org:8786" and "--memory-limit" in worker


# ---- many hosts on loopback: the units' commands, each worker in its own directory ----------------

def _as_host(argv: list[str], replace: dict[str, str]) -> list[str]:
    """A unit's ExecStart as this test runs it: ``dask SUB`` as ``python -m distributed.cli.dask_SUB`` (what
    the dask command runs) and each host-specific value in ``replace`` swapped; every one must occur."""
    assert set(replace) <= set(argv), set(replace) - set(argv)
    return [sys.executable, "-m", f"distributed.cli.dask_{argv[1]}", *(replace.get(a, a) for a in argv[2:])]


def _tree(root: Path) -> Path:
    """Small, with something for every job: duplicates, code, a secret, several directories."""
    for d in range(3):
        (root / f"d{d}").mkdir(parents=True)
        for f in range(6):
            (root / f"d{d}" / f"f{f}.txt").write_bytes(b"line %d\n" % f * (f + 1))
        (root / f"d{d}" / "mod.py").write_text(f"# module {d}\nimport os\n\n\ndef f():\n    return {d}\n")
    (root / "d0" / "keys.env").write_text("AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n")
    (root / "d1" / "big.bin").write_bytes(bytes(range(256)) * 400)
    (root / "d2" / "copy.bin").write_bytes(bytes(range(256)) * 400)
    return root


def _no_times(value):
    """A summary's result without what varies between runs: times and rates."""
    if isinstance(value, dict):
        return {k: _no_times(v) for k, v in value.items() if not re.search(r"(_s|seconds|time|_at)$", k)}
    if isinstance(value, list):
        return [_no_times(v) for v in value]
    return value


def _results(out: Path) -> dict:
    """Every Parquet dataset under ``out`` (rows sorted by path, then the rest), the summary's counts and result
    (files it wrote named from OUT)."""
    import pyarrow.types as pt
    datasets = {}
    for d in sorted({p.parent.relative_to(out) for p in out.rglob("*.parquet")}):
        if str(d).startswith(".exoflow-"):
            continue                                    # the journal: how the run went, not what it found
        t = read_dataset(out / d)
        keys = dict.fromkeys(c for c in ("path", *t.column_names)
                             if c in t.column_names and not pt.is_nested(t.schema.field(c).type))
        datasets[str(d)] = t.sort_by([(k, "ascending") for k in keys]).to_pylist()
    summary = json.loads((out / "summary.json").read_text().replace(json.dumps(str(out))[1:-1], "OUT"))
    return {"datasets": datasets, "result": _no_times(summary["result"]),
            "counts": {k: summary[k] for k in ("files", "bytes", "errors", "dirs", "entries")}}


def _ask(address: str, what):
    from distributed import Client
    with Client(address, timeout="10s") as c:
        return what(c)


@pytest.fixture
def three_hosts(tmp_path):
    """A scheduler and three single-process worker 'hosts' started from the systemd units' commands on
    127.0.0.1, each in its own directory, all with DASK_CONFIG=cluster/dask.yaml; yields the address.
    At the end every process of theirs, the workers the nannies forked included, must be gone."""
    import psutil
    shared = tmp_path / "shared"
    shared.mkdir()
    port, scheduler_file = free_port(), str(shared / "scheduler.json")
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_CONFIG": str(SHARED_CONFIG), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    sched_dir = tmp_path / "scheduler-host"
    sched_dir.mkdir()
    procs = [subprocess.Popen(
        _as_host(_exec_start("exoflow-scheduler.service", {}),
                 {"0.0.0.0": "127.0.0.1", "8786": str(port), ":8787": "127.0.0.1:0",
                  "/shared/exoflow/scheduler.json": scheduler_file}),
        cwd=sched_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    # two hosts find the scheduler by its file on the shared file system, one by its address
    for i, where in enumerate((f"--scheduler-file {scheduler_file}",) * 2 + (address,)):
        host = tmp_path / f"host{i}"
        (host / "spill").mkdir(parents=True)
        unit_env = {**_unit_env("exoflow-worker.service"), "EXOFLOW_SCHEDULER": where, "EXOFLOW_NWORKERS": "1"}
        argv = _as_host(_exec_start("exoflow-worker.service", unit_env),
                        {"/var/lib/exoflow/worker": str(host / "spill")})
        if i < 2:                        # a scheduler file the scheduler has not written yet: wait for it
            deadline = time.time() + 60
            while not os.path.exists(scheduler_file) and time.time() < deadline:
                time.sleep(0.1)
        procs.append(subprocess.Popen(argv, cwd=host, env=env, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL))
    family: list = []
    try:
        deadline = time.time() + 90
        while True:
            try:
                if len(_ask(address, lambda c: c.scheduler_info()["workers"])) == 3:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "the scheduler and three workers did not start"
            time.sleep(0.3)
        family = [psutil.Process(p.pid) for p in procs]
        family += [c for p in family for c in p.children(recursive=True)]
        yield address, tmp_path
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        gone, alive = psutil.wait_procs(family, timeout=30)
        for p in alive:
            p.kill()
        assert not alive, f"processes left behind: {alive}"


def test_every_job_on_three_hosts_equals_the_embedded_cluster(three_hosts, tmp_path):
    address, _ = three_hosts
    import dask
    import distributed
    shared = yaml.safe_load(SHARED_CONFIG.read_text())["distributed"]
    # every worker took its memory tiers from the shared file, the scheduler its settings and the preload
    tiers = _ask(address, lambda c: c.run(lambda: dask.config.get("distributed.worker.memory")))
    assert len(tiers) == 3 and all(t | shared["worker"]["memory"] == t for t in tiers.values())
    defaults = yaml.safe_load((Path(distributed.__file__).parent / "distributed.yaml").read_text())["distributed"]
    assert shared["worker"]["memory"]["pause"] != defaults["worker"]["memory"]["pause"]   # not Dask's own
    assert _ask(address, lambda c: c.run_on_scheduler(lambda dask_scheduler: (
        "exoflow" in dask_scheduler.plugins,
        dask.config.get("distributed.scheduler.work-stealing-interval")))) \
        == (True, shared["scheduler"]["work-stealing-interval"])
    tree = _tree(tmp_path / "tree")
    for job in JOBS:
        remote, embedded = tmp_path / "remote" / job, tmp_path / "embedded" / job
        r = exoflow("run", job, str(tree), "--scheduler", address, "--out", str(remote), "--chunk-files", "4", "-q")
        assert r.returncode in (0, 1), (job, r.stderr)
        e = exoflow("run", job, str(tree), "--embedded", "--workers", "1", "--out", str(embedded),
                    "--chunk-files", "4", "-q")
        assert e.returncode == r.returncode, (job, e.stderr)
        got, want = _results(remote), _results(embedded)
        assert got["datasets"] and got == want, job
    # the chunks went to every host
    assert all(_ask(address, lambda c: c.run(lambda dask_worker: dask_worker.state.executed_count > 0)).values())


# ---- HPC: SLURM through dask-jobqueue ------------------------------------------------------------

SLURM = CLUSTER / "slurm" / "exoflow_slurm.py"


def test_slurm_job_script_runs_workers_with_the_shared_config(tmp_path):
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is not installed (the test extra has it)")
    r = subprocess.run([sys.executable, str(SLURM), "--scheduler-file", str(tmp_path / "s.json"), "--cores", "4",
                        "--memory", "16GiB", "--queue", "batch", "--walltime", "02:00:00", "--dry-run"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert {"#SBATCH -p batch", "#SBATCH --cpus-per-task=4", "#SBATCH --mem=16G", "#SBATCH -t 02:00:00"} <= set(lines)
    config = next(line.split("=", 1)[1] for line in lines if line.startswith("export DASK_CONFIG="))
    assert Path(config).resolve() == SHARED_CONFIG.resolve()
    worker = shlex.split(next(line for line in lines if "distributed.cli.dask_worker" in line))
    assert worker[worker.index("--memory-limit") + 1] == "4.00GiB"        # 16 GiB shared by 4 processes
    assert worker[worker.index("--nworkers") + 1] == "4" and worker[worker.index("--nthreads") + 1] == "1"
    assert not (tmp_path / "s.json").exists()                            # nothing submitted, nothing left


FAKE_SBATCH = """#!/bin/bash
# sbatch SCRIPT: keeps a copy (as sbatch does) and runs it at once in a session of its own
cp "$1" "$FAKE_SLURM/job-$$.sh"
setsid bash "$FAKE_SLURM/job-$$.sh" >"$FAKE_SLURM/job-$$.log" 2>&1 </dev/null &
echo $! >>"$FAKE_SLURM/jobs"
echo "Submitted batch job $!"
"""
FAKE_SCANCEL = """#!/bin/bash
for id in "$@"; do kill -TERM -- "-$id" 2>/dev/null; done; exit 0
"""


def test_slurm_recipe_runs_a_job_through_its_scheduler_file(tmp_path):
    """sbatch and scancel stand-ins run the batch script here: the recipe's scheduler file, worker job and
    `exoflow run --scheduler-file` work together, and stopping the recipe ends the jobs."""
    import psutil
    from oracle import walk_lstat
    pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is not installed (the test extra has it)")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("scancel", FAKE_SCANCEL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_SLURM": str(tmp_path)}
    scheduler_file = tmp_path / "shared" / "scheduler.json"
    scheduler_file.parent.mkdir()
    recipe = subprocess.Popen([sys.executable, str(SLURM), "--scheduler-file", str(scheduler_file), "--jobs", "1",
                               "--cores", "2", "--memory", "1GiB", "--interface", "lo", "--walltime", "00:10:00"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists():
            assert recipe.poll() is None and time.time() < deadline, recipe.stderr.read()
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        from distributed import Client
        with Client(address, timeout="10s") as c:
            c.wait_for_workers(2, timeout=60)
            pause = yaml.safe_load(SHARED_CONFIG.read_text())["distributed"]["worker"]["memory"]["pause"]
            import dask
            assert set(c.run(lambda: dask.config.get("distributed.worker.memory.pause")).values()) == {pause}
        tree = _tree(tmp_path / "tree")
        r = exoflow("run", "inventory", str(tree), "--scheduler-file", str(scheduler_file),
                    "--out", str(tmp_path / "o"), "--chunk-files", "4")
        assert r.returncode == 0, r.stderr
        assert address in r.stderr
        t = read_dataset(tmp_path / "o" / "files")
        assert {p.encode(): (s, "file") for p, s in zip(t.column("path").to_pylist(), t.column("size").to_pylist())} \
            == walk_lstat(str(tree))
    finally:
        recipe.terminate()
        recipe.wait(timeout=60)
    assert recipe.returncode == 0, recipe.stderr.read()
    jobs = [int(j) for j in (tmp_path / "jobs").read_text().split()]
    assert len(jobs) == 1
    deadline = time.time() + 30                           # scancel's SIGTERM: the job's workers close
    while (left := [p for p in psutil.process_iter() if _pgid(p.pid) in jobs]) and time.time() < deadline:
        time.sleep(0.2)
    for p in left:
        p.kill()
    assert not left, f"worker job processes left behind: {left}"
    assert not scheduler_file.exists()


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


# ---- Kubernetes: the dask-kubernetes operator ----------------------------------------------------

MANIFEST = CLUSTER / "kubernetes" / "exoflow-cluster.yaml"


def _crd_schema(kind: str) -> tuple[str, dict]:
    """(apiVersion, openAPIV3Schema) of the operator's CRD for ``kind``, from the installed dask-kubernetes
    package's files (not imported: .ci/install installs it without its dependencies, for the CRDs only).
    Strict as ``kubectl apply --validate=strict``: a field the schema does not name is an error, not pruned."""
    import importlib.metadata
    try:
        files = importlib.metadata.files("dask-kubernetes") or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("dask-kubernetes is not installed (.ci/install installs it, --no-deps, for its CRDs)")
    path = next(f for f in files if str(f).endswith(f"/crds/{kind.lower()}.yaml"))
    crd = yaml.safe_load(path.read_text())
    assert crd["kind"] == "CustomResourceDefinition" and crd["spec"]["names"]["kind"] == kind
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    return f"{crd['spec']['group']}/{version['name']}", _strict(version["schema"]["openAPIV3Schema"])


def _strict(schema):
    if isinstance(schema, dict):
        schema = {k: _strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema \
                and not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [_strict(v) for v in schema]
    return schema


def _validate(doc: dict) -> None:
    import jsonschema
    api_version, schema = _crd_schema(doc["kind"])
    assert doc["apiVersion"] == api_version
    jsonschema.validate({k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}, schema)


def test_kubernetes_manifest_matches_the_operators_crds():
    import jsonschema
    docs = {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text())}
    assert set(docs) == {"DaskCluster", "DaskWorkerGroup"}
    for doc in docs.values():
        _validate(doc)
    broken = yaml.safe_load(yaml.safe_dump(docs["DaskWorkerGroup"]))    # the check can fail: a misspelt field
    broken["spec"]["worker"]["replica"] = broken["spec"]["worker"].pop("replicas")
    with pytest.raises(jsonschema.ValidationError):
        _validate(broken)

    cluster, gpu = docs["DaskCluster"], docs["DaskWorkerGroup"]
    assert gpu["spec"]["cluster"] == cluster["metadata"]["name"]
    (scheduler,) = cluster["spec"]["scheduler"]["spec"]["containers"]
    (cpu_worker,) = cluster["spec"]["worker"]["spec"]["containers"]
    (gpu_worker,) = gpu["spec"]["worker"]["spec"]["containers"]
    assert scheduler["args"] == ["dask", "scheduler", "--preload", "exoflow.dashboard"]
    assert cpu_worker["args"][:3] == ["dask", "worker", "$(DASK_SCHEDULER_ADDRESS)"]
    assert gpu_worker["args"][:4] == ["dask", "cuda", "worker", "$(DASK_SCHEDULER_ADDRESS)"]
    assert gpu_worker["args"][gpu_worker["args"].index("--resources") + 1] == "GPU=1"
    assert gpu_worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "nvidia.com/gpu" not in str(cpu_worker["resources"])
    for c in (scheduler, cpu_worker, gpu_worker):
        assert {"name": "DASK_CONFIG", "value": "/etc/exoflow/dask.yaml"} in c["env"]
        assert c["image"].startswith("registry.example.org/exoflow")        # the placeholder README explains
        assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/data", "/results"}
