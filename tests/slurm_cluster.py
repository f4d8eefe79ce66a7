"""A real one-node SLURM cluster for the tests: munged, slurmctld and slurmd from Debian's slurm-wlm, with
one fake GPU (`gres.conf`: File=/dev/null) and no accounting, so the executor's status command is squeue.

The configuration goes to /etc/slurm (job steps inside a batch job look for it there, not in SLURM_CONF),
marked as ours; a configuration that is not ours is never touched (the cluster then cannot be started).
State, spool and logs live in a temporary folder.

`one_node_cluster(root)` starts the daemons, waits until the node is idle, yields the environment that
sbatch/squeue need, and stops the daemons afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_tools() -> list[str]:
    """The SLURM and munge programs this machine lacks (empty when a cluster can be started)."""
    tools = [*DAEMONS, "sbatch", "squeue", "sinfo", "scontrol"]
    return [tool for tool in tools if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()]


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


CONFIG_DIR = Path("/etc/slurm")
MARK = "# written by specrec's tests (tests/slurm_cluster.py)\n"


class ClusterUnavailable(RuntimeError):
    pass


def write_config(root: Path, cpus: int, memory_mb: int) -> Path:
    host = socket.gethostname()
    state = root / "state"
    for folder in (state, root / "spool", root / "log"):
        folder.mkdir(parents=True, exist_ok=True)
    conf = CONFIG_DIR / "slurm.conf"
    if conf.exists() and not conf.read_text().startswith(MARK):
        raise ClusterUnavailable(f"{conf} exists and is not ours: not starting a test cluster over it")
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    (CONFIG_DIR / "gres.conf").write_text(MARK + f"NodeName={host} Name=gpu File=/dev/null\n")
    conf.write_text(
        MARK
        + f"""ClusterName=specrec-test
SlurmctldHost={host}
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation={state}
SlurmdSpoolDir={root / "spool"}
SlurmctldPidFile={root / "slurmctld.pid"}
SlurmdPidFile={root / "slurmd.pid"}
SlurmctldLogFile={root / "log" / "slurmctld.log"}
SlurmdLogFile={root / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
MinJobAge=3600
DefMemPerCPU=1000
GresTypes=gpu
NodeName={host} CPUs={cpus} RealMemory={memory_mb} Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    )
    return conf


def _munge_running() -> bool:
    return subprocess.run(["pgrep", "-x", "munged"], capture_output=True).returncode == 0


def start_munge() -> None:
    """munged as Debian's service runs it: user munge, socket folder /run/munge (needs root to create)."""
    socket_dir = Path("/run/munge")
    socket_dir.mkdir(mode=0o755, exist_ok=True)
    shutil.chown(socket_dir, "munge", "munge")
    for leftover in (Path("/var/log/munge/munged.log"), Path("/var/lib/munge/munged.seed")):
        if leftover.exists():  # a munged once started as root leaves files munge may not open
            shutil.chown(leftover, "munge", "munge")
    result = subprocess.run(
        ["runuser", "-u", "munge", "--", _binary("munged")], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"munged did not start: {result.stderr.strip()}")


@contextmanager
def one_node_cluster(root: Path, cpus: int | None = None, memory_mb: int = 8000) -> Iterator[dict]:
    cpus = cpus or os.cpu_count() or 1
    conf = write_config(root, cpus, memory_mb)
    env = os.environ | {"SLURM_CONF": str(conf)}
    started: list[Path] = []
    try:
        if not _munge_running():
            start_munge()
            started.append(Path("/run/munge/munged.pid"))
        subprocess.run([_binary("slurmctld"), "-f", str(conf)], check=True, env=env, capture_output=True)
        started.append(root / "slurmctld.pid")
        subprocess.run([_binary("slurmd"), "-f", str(conf)], check=True, env=env, capture_output=True)
        started.append(root / "slurmd.pid")
        _wait_for_idle_node(env, root)
        yield env
    finally:
        for pid_file in reversed(started):
            _stop(pid_file)
        for name in ("slurm.conf", "gres.conf"):
            written = CONFIG_DIR / name
            if written.exists() and written.read_text().startswith(MARK):
                written.unlink()


def _wait_for_idle_node(env: dict, root: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        result = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
        state = result.stdout.strip()
        if state in ("idle", "mix", "alloc"):
            return
        time.sleep(1)
    logs = "\n".join((root / "log" / f).read_text()[-2000:] for f in ("slurmctld.log", "slurmd.log"))
    raise RuntimeError(f"the SLURM node did not come up (state {state!r}):\n{logs}")


def _stop(pid_file: Path, timeout: float = 20) -> None:
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
