#!/usr/bin/env python3
"""Start, inspect and stop a throwaway single-node SLURM cluster on this host.

Usage::

    python scripts/slurm_cluster.py start DIR [--cpus N] [--port P] [--kill-wait S]
    python scripts/slurm_cluster.py status DIR
    python scripts/slurm_cluster.py stop DIR

Everything lives under DIR (config, munge key and socket, state, spool, logs,
pid files), so tests can run a cluster in a temporary directory.  ``start``
prints shell exports for clients on stdout (progress goes to stderr)::

    eval "$(python scripts/slurm_cluster.py start /tmp/slurm)"
    sbatch --wrap hostname            # or: -m hydra/launcher=submitit_slurm
    python scripts/slurm_cluster.py stop /tmp/slurm

The same values are written to ``DIR/cluster.json``.

Requirements: root, and Debian's ``slurm-wlm`` and ``munge`` packages
(``apt-get install -y slurm-wlm munge``).  No systemd or cgroups are needed:
the config uses ``proctrack/linuxproc`` and ``task/none``.

Notes:

* The node declares ``--cpus`` CPUs (default: at least 4) whatever the host
  has; ``SlurmdParameters=config_overrides`` stops slurmd from marking the
  node INVAL for that, and ``OverSubscribe=FORCE:4`` lets jobs share CPUs.
* There is no accounting daemon, so the real ``sacct`` fails.  submitit polls
  ``sacct`` and, without it, waits forever for a job that died without a
  result (cancelled, killed, timed out).  ``DIR/bin/sacct`` is a stand-in that
  answers submitit's query from ``squeue``; ``start`` puts it first on PATH.
* ``scancel`` sends SIGTERM to every process of the job, then SIGKILL after
  ``KillWait`` seconds (``--kill-wait``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PARTITION = "debug"
DEFAULT_PORT = 6817
SOCKET_PATH_MAX = 100  # sun_path holds 108 bytes; keep a margin
DAEMONS = ("slurmd", "slurmctld", "munged")  # stop order
REQUIRED = ("munged", "slurmctld", "slurmd", "sinfo", "squeue", "scancel")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])

SACCT_SHIM = """#!/bin/sh
# Stand-in for sacct on a cluster without slurmdbd (written by slurm_cluster.py).
# Answers submitit's `sacct -o JobID,State,NodeList --parsable2 -j ID ...`
# from squeue, which keeps finished jobs for MinJobAge seconds.
ids=""
while [ $# -gt 0 ]; do
    case "$1" in
        -j|--jobs) ids="$ids $(echo "$2" | tr ',' ' ')"; shift 2 ;;
        --jobs=*) ids="$ids $(echo "${1#--jobs=}" | tr ',' ' ')"; shift ;;
        *) shift ;;
    esac
done
echo "JobID|State|NodeList"
for id in $ids; do
    squeue -h -t all -j "$id" -o "%i|%T|%N" 2>/dev/null
done
exit 0
"""


class ClusterError(RuntimeError):
    """A problem that is reported as one line, without a traceback."""


@dataclass
class Settings:
    """What `start` configured; saved as DIR/cluster.json."""

    root: str
    node: str
    partition: str
    cpus: int
    port: int
    kill_wait: int
    slurm_conf: str
    bin_dir: str

    def client_env(self) -> dict[str, str]:
        """Environment variables a client (sbatch, submitit) needs."""
        path = os.environ.get("PATH", "")
        return {"SLURM_CONF": self.slurm_conf, "PATH": f"{self.bin_dir}{os.pathsep}{path}"}


class Layout:
    """File locations under the cluster directory."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.conf = self.root / "slurm.conf"
        self.info = self.root / "cluster.json"
        self.munge = self.root / "munge"
        self.key = self.munge / "munge.key"
        self.socket = self.munge / "munge.socket"
        self.state = self.root / "state"
        self.spool = self.root / "spool"
        self.log = self.root / "log"
        self.bin = self.root / "bin"

    def pid_file(self, daemon: str) -> Path:
        """Pid file of `daemon` (munged, slurmctld or slurmd)."""
        folder = self.munge if daemon == "munged" else self.root
        return folder / f"{daemon}.pid"

    def log_file(self, daemon: str) -> Path:
        """Log file of `daemon`."""
        return self.log / f"{daemon}.log"


def find_binary(name: str) -> str | None:
    """Path of an executable, also looking in /usr/sbin and /sbin."""
    return shutil.which(name, path=SEARCH_PATH)


def binary(name: str) -> str:
    """Full path of an installed executable (the bare name if not found)."""
    return find_binary(name) or name


def check_prerequisites() -> None:
    """Fail with one line when slurm/munge are missing or we are not root."""
    missing = [name for name in REQUIRED if find_binary(name) is None]
    if missing:
        raise ClusterError(
            f"SLURM is not installed (missing: {', '.join(missing)}); "
            "install it with: apt-get install -y slurm-wlm munge"
        )
    if os.geteuid() != 0:
        raise ClusterError("the SLURM daemons must be started as root")


def host_memory_mb() -> int:
    """Total memory of this host in MB (from /proc/meminfo)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


def render_config(layout: Layout, settings: Settings) -> str:
    """Text of slurm.conf for one node and one partition on localhost."""
    node = settings.node
    partition = f"PartitionName={settings.partition} Nodes={node} Default=YES MaxTime=INFINITE"
    return f"""\
# Written by scripts/slurm_cluster.py: single-node test cluster, runs as root.
ClusterName=local
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={settings.port}
SlurmdPort={settings.port + 1}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={layout.socket}
StateSaveLocation={layout.state}
SlurmdSpoolDir={layout.spool}
SlurmctldPidFile={layout.pid_file("slurmctld")}
SlurmdPidFile={layout.pid_file("slurmd")}
SlurmctldLogFile={layout.log_file("slurmctld")}
SlurmdLogFile={layout.log_file("slurmd")}
SlurmctldDebug=info
SlurmdDebug=info
# No systemd/cgroups in containers.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Accept the declared CPUs/memory even when the host has fewer.
SlurmdParameters=config_overrides
ReturnToService=2
# SIGTERM -> SIGKILL delay for scancel and time limits.
KillWait={settings.kill_wait}
InactiveLimit=0
# Keep finished jobs visible to squeue (and the sacct stand-in) for an hour.
MinJobAge=3600
NodeName={node} NodeAddr=127.0.0.1 CPUs={settings.cpus} RealMemory={host_memory_mb()} State=UNKNOWN
{partition} State=UP OverSubscribe=FORCE:4
"""


def read_pid(path: Path) -> int | None:
    """Pid stored in `path` if that process still runs, else None."""
    try:
        pid = int(path.read_text().split()[0])
        os.kill(pid, 0)
    except (OSError, ValueError, IndexError):
        return None
    try:
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return None
    except (OSError, IndexError):
        pass
    return pid


def running(layout: Layout) -> dict[str, int | None]:
    """Pid of each daemon of this cluster, None for those not running."""
    return {daemon: read_pid(layout.pid_file(daemon)) for daemon in DAEMONS}


def port_free(port: int) -> bool:
    """Whether nothing listens on TCP `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def log_tail(path: Path, lines: int = 5) -> str:
    """Last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output."""
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


def start_daemon(layout: Layout, daemon: str, cmd: list[str], timeout: float = 15.0) -> None:
    """Start a forking daemon and wait for its pid file."""
    result = run(cmd)
    deadline = time.monotonic() + timeout
    while read_pid(layout.pid_file(daemon)) is None:
        if result.returncode != 0 or time.monotonic() > deadline:
            detail = (result.stderr.strip() or log_tail(layout.log_file(daemon))).splitlines()
            raise ClusterError(f"{daemon} did not start: {detail[-1] if detail else 'no output'}")
        time.sleep(0.1)


def prepare(layout: Layout, settings: Settings) -> None:
    """Create the directory tree, munge key, sacct stand-in and slurm.conf."""
    for path in (layout.state, layout.spool, layout.log, layout.bin):
        path.mkdir(parents=True, exist_ok=True)
    layout.munge.mkdir(parents=True, exist_ok=True)
    layout.munge.chmod(0o755)  # munged wants the socket directory traversable
    if not layout.key.exists():
        layout.key.write_bytes(os.urandom(1024))
    layout.key.chmod(0o400)
    shim = layout.bin / "sacct"
    shim.write_text(SACCT_SHIM)
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    layout.conf.write_text(render_config(layout, settings))
    layout.info.write_text(json.dumps(asdict(settings), indent=2) + "\n")


def node_state(settings: Settings) -> str:
    """State of the node as sinfo reports it ('' when unreachable)."""
    env = {**os.environ, "SLURM_CONF": settings.slurm_conf}
    result = run(["sinfo", "-h", "-N", "-n", settings.node, "-o", "%T"], env=env)
    return result.stdout.strip() if result.returncode == 0 else ""


def wait_idle(layout: Layout, settings: Settings, timeout: float) -> None:
    """Poll sinfo until the node is idle (or mixed/allocated: it serves jobs)."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        state = node_state(settings)
        if state.rstrip("*~#") in {"idle", "mixed", "allocated"}:
            return
        time.sleep(0.2)
    raise ClusterError(
        f"node {settings.node} not idle after {timeout:.0f}s (state: {state or 'unreachable'}); "
        f"see {layout.log}"
    )


def start(layout: Layout, cpus: int, port: int, kill_wait: int, timeout: float) -> Settings:
    """Start munged, slurmctld and slurmd (those not running) and wait for idle."""
    check_prerequisites()
    node = socket.gethostname().split(".")[0]
    settings = Settings(
        root=str(layout.root),
        node=node,
        partition=PARTITION,
        cpus=cpus,
        port=port,
        kill_wait=kill_wait,
        slurm_conf=str(layout.conf),
        bin_dir=str(layout.bin),
    )
    step_socket = layout.spool / f"{node}_0000000.0000000"
    for path in (layout.socket, step_socket):
        if len(str(path)) > SOCKET_PATH_MAX:
            raise ClusterError(f"{layout.root} is too long for unix sockets; use a shorter DIR")
    pids = running(layout)
    if pids["slurmctld"] is None and not port_free(port):
        raise ClusterError(f"port {port} is in use (another cluster?); pass --port")
    if pids["slurmctld"] is None or pids["slurmd"] is None:
        prepare(layout, settings)
    elif layout.info.exists():
        settings = Settings(**json.loads(layout.info.read_text()))
    if pids["munged"] is None:
        munge = layout.munge
        start_daemon(
            layout,
            "munged",
            [
                binary("munged"),
                "--force",  # tolerate non-traversable parents such as pytest's tmp dirs
                f"--socket={layout.socket}",
                f"--key-file={layout.key}",
                f"--pid-file={layout.pid_file('munged')}",
                f"--log-file={layout.log_file('munged')}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
    if pids["slurmctld"] is None:
        start_daemon(layout, "slurmctld", [binary("slurmctld"), "-f", str(layout.conf)])
    if pids["slurmd"] is None:
        start_daemon(layout, "slurmd", [binary("slurmd"), "-f", str(layout.conf), "-N", node])
    wait_idle(layout, settings, timeout)
    return settings


def wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until the processes exit; return those still alive."""
    deadline = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [pid for pid in alive if Path(f"/proc/{pid}").exists() and _not_zombie(pid)]
    return alive


def _not_zombie(pid: int) -> bool:
    """Whether `pid` is a live (non-zombie) process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return False


def cancel_jobs(settings: Settings) -> None:
    """Cancel every job of the partition and wait (KillWait + margin) for them to end."""
    env = {**os.environ, "SLURM_CONF": settings.slurm_conf}
    run(["scancel", "-p", settings.partition], env=env)
    deadline = time.monotonic() + settings.kill_wait + 15
    while time.monotonic() < deadline:
        result = run(["squeue", "-h", "-p", settings.partition, "-o", "%i"], env=env)
        if result.returncode != 0 or not result.stdout.strip():
            return
        time.sleep(0.3)


def stop(layout: Layout) -> list[str]:
    """Cancel jobs, then stop slurmd, slurmctld and munged; return what was stopped."""
    pids = running(layout)
    if pids["slurmctld"] and pids["munged"] and layout.info.exists():
        cancel_jobs(Settings(**json.loads(layout.info.read_text())))
    stopped = []
    for daemon in DAEMONS:
        pid = pids[daemon]
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        if wait_gone([pid], 15.0):
            os.kill(pid, signal.SIGKILL)
            wait_gone([pid], 5.0)
        layout.pid_file(daemon).unlink(missing_ok=True)
        stopped.append(daemon)
    return stopped


def print_env(settings: Settings) -> None:
    """Print eval-able exports for clients, plus the partition as a comment."""
    print(f"export SLURM_CONF={shlex.quote(settings.slurm_conf)}")
    print(f'export PATH={shlex.quote(settings.bin_dir)}:"$PATH"')
    print(f"# partition={settings.partition} node={settings.node} cpus={settings.cpus}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="write the config, start the daemons, wait for idle")
    p_start.add_argument("dir", type=Path)
    p_start.add_argument("--cpus", type=int, default=max(4, os.cpu_count() or 1))
    p_start.add_argument("--port", type=int, default=DEFAULT_PORT, help="slurmctld port; slurmd +1")
    p_start.add_argument("--kill-wait", type=int, default=10, help="SIGTERM->SIGKILL seconds")
    p_start.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for idle")
    sub.add_parser("stop", help="cancel jobs, stop the daemons").add_argument("dir", type=Path)
    sub.add_parser("status", help="show daemons and node state").add_argument("dir", type=Path)
    args = parser.parse_args(argv)
    layout = Layout(args.dir)
    try:
        if args.command == "start":
            began = time.monotonic()
            settings = start(layout, args.cpus, args.port, args.kill_wait, args.timeout)
            print(f"cluster up in {time.monotonic() - began:.1f}s: {layout.root}", file=sys.stderr)
            print_env(settings)
            return 0
        if args.command == "stop":
            stopped = stop(layout)
            print(f"stopped: {', '.join(stopped) or 'nothing was running'}", file=sys.stderr)
            return 0
        pids = running(layout)
        for daemon, pid in pids.items():
            print(f"{daemon}: {'running, pid ' + str(pid) if pid else 'not running'}")
        if pids["slurmctld"] and layout.info.exists():
            settings = Settings(**json.loads(layout.info.read_text()))
            print(f"node {settings.node}: {node_state(settings) or 'unreachable'}")
            print_env(settings)
        return 0 if all(pids.values()) else 1
    except ClusterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
