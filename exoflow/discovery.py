"""The cluster state directory, and how a run finds its cluster (``discover``).

``exoflow cluster start`` (exoflow/service.py) records its cluster in ``state_dir()``: ``cluster.json``
(address, each process's pid, start time and command marker, the options, the client's TLS files)
and Dask's scheduler file ``scheduler.json``. A state is live only while its scheduler process is
the one started (pid, psutil's create_time and command line all match): a pid the system gave to
another process since is never taken for it.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Callable

from exoflow.errors import UsageError

if TYPE_CHECKING:
    from exoflow.options import ClusterOptions

STATE_FILE = "cluster.json"
SCHEDULER_FILE = "scheduler.json"
DRIVER_SOCKET = "driver.sock"          # the warm driver's (exoflow/driver.py)
SCHEDULER, WORKERS, DRIVER = "scheduler", "workers", "driver"
EMBEDDED = "an embedded cluster"
RUNNING = "the running exoflow cluster"


def state_dir() -> str:
    """``$EXOFLOW_STATE_DIR``, else ``$XDG_STATE_HOME/exoflow``, else ``~/.local/state/exoflow``."""
    if os.environ.get("EXOFLOW_STATE_DIR"):
        return os.environ["EXOFLOW_STATE_DIR"]
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "exoflow")


def state_path(*parts: str) -> str:
    return os.path.join(state_dir(), *parts)


def _names_a_scheduler(argv: list[str]) -> bool:
    return any(a.split("=")[0] in ("--scheduler", "--scheduler-file") for a in argv) \
        or bool(os.environ.get("DASK_SCHEDULER_ADDRESS"))


def may_use_running_cluster(argv: list[str]) -> bool:
    """Cheap (no import, one stat): could ``exoflow run ARGV`` use a running scheduler? When not,
    the embedded cluster's fork server may start early. A Dask YAML ``scheduler-address`` is not
    looked at here (the fork server is then started for nothing, which costs time, not results)."""
    return "--embedded" not in argv and (_names_a_scheduler(argv) or os.path.exists(state_path(STATE_FILE)))


def may_use_exoflow_cluster(argv: list[str]) -> bool:
    """Cheap (no import, one stat): could ``exoflow run ARGV`` use the running ``exoflow cluster``,
    i.e. does no option or variable name another cluster? Its driver (exoflow/driver.py) then
    runs it; the run's own discovery (``discover``) still decides which cluster it uses."""
    return "--embedded" not in argv and not _names_a_scheduler(argv) and os.path.exists(state_path(STATE_FILE))


# ---- the state -------------------------------------------------------------------

def read_state() -> dict | None:
    try:
        with open(state_path(STATE_FILE), encoding="utf-8") as f:
            state = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}                   # unreadable: stale, never trusted
    return state if isinstance(state, dict) else {}


def ours(entry: Any):
    """The psutil.Process that ``entry`` (a state record) names, if it is still that process."""
    import psutil
    try:
        p = psutil.Process(int(entry["pid"]))
        if p.create_time() == entry["create_time"] and entry["marker"] in " ".join(p.cmdline()) \
                and p.status() != psutil.STATUS_ZOMBIE:
            return p
    except (psutil.Error, KeyError, TypeError, ValueError):
        pass
    return None


def live(state: dict) -> bool:
    return ours(state.get("processes", {}).get(SCHEDULER)) is not None


def running() -> dict | None:
    """The state of the running exoflow cluster (its scheduler process is the one started), else None.
    Reads the state file and asks the system about one pid; contacts nothing."""
    state = read_state()
    return state if state and live(state) else None


# ---- how a run finds its cluster ----------------------------------------------------

def scheduler_file_address(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            address = json.load(f).get("address")
    except (OSError, ValueError, AttributeError) as e:
        why = getattr(e, "strerror", None) or "not a Dask scheduler file (JSON with an address)"
        raise UsageError(f"--scheduler-file {path}: {why}") from None
    if not isinstance(address, str):
        raise UsageError(f"--scheduler-file {path}: no scheduler address in it")
    return address


def _with_tls(opts: ClusterOptions, state: dict | None) -> dict:
    """The TLS files for a run: those given, else the running cluster's when it is the one used."""
    if opts.tls_ca_file or not state or not state.get("tls") or state.get("address") != opts.scheduler:
        return {}
    t = state["tls"]
    return {"tls_ca_file": t["ca"], "tls_cert": t["cert"], "tls_key": t["key"]}


def discover(opts: ClusterOptions) -> ClusterOptions:
    """``opts`` with the cluster a run uses: ``scheduler`` (None: embedded), ``source`` (which, in
    words) and the TLS files. The order: --embedded; --scheduler or --scheduler-file;
    DASK_SCHEDULER_ADDRESS, else Dask's ``scheduler-address`` setting; a running ``exoflow cluster``;
    else an embedded cluster. Raises UsageError for a --scheduler-file that names no address."""
    import dataclasses
    replace: Callable[..., ClusterOptions] = dataclasses.replace
    if opts.source:
        return opts
    if opts.embedded:
        return replace(opts, scheduler=None, source=EMBEDDED)
    if opts.scheduler or opts.scheduler_file:
        source = "--scheduler" if opts.scheduler else f"--scheduler-file {opts.scheduler_file}"
        opts = replace(opts, scheduler=opts.scheduler or scheduler_file_address(opts.scheduler_file), source=source)
        return replace(opts, **_with_tls(opts, running()))
    if os.environ.get("DASK_SCHEDULER_ADDRESS"):
        return replace(opts, scheduler=os.environ["DASK_SCHEDULER_ADDRESS"], source="DASK_SCHEDULER_ADDRESS")
    import dask.config
    address = dask.config.get("scheduler-address", None)
    if address:
        return replace(opts, scheduler=str(address), source="Dask's scheduler-address setting")
    state = running()
    if state:
        opts = replace(opts, scheduler=state["address"], source=RUNNING)
        return replace(opts, **_with_tls(opts, state))
    return replace(opts, source=EMBEDDED)


def security(opts: ClusterOptions):
    """A distributed.Security for ``opts``' TLS files, else Dask's own TLS settings (its config)."""
    from distributed.security import Security
    if opts.tls_ca_file:
        return Security(tls_ca_file=opts.tls_ca_file, tls_client_cert=opts.tls_cert, tls_client_key=opts.tls_key,
                        require_encryption=True)
    return Security()


def check_tls_files(opts: ClusterOptions) -> None:
    """Raise UsageError unless the three --tls-* files are all given (or none) and readable."""
    given = {"--tls-ca-file": opts.tls_ca_file, "--tls-cert": opts.tls_cert, "--tls-key": opts.tls_key}
    if not any(given.values()):
        return
    missing = [f for f, v in given.items() if not v]
    if missing:
        raise UsageError(f"{', '.join(missing)}: a TLS scheduler needs --tls-ca-file, --tls-cert and --tls-key")
    if opts.embedded:
        raise UsageError("--tls-ca-file, --tls-cert and --tls-key are for a running TLS scheduler, not --embedded")
    for f, path in given.items():
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise UsageError(f"{f} {path}: {e.strerror}") from None
