"""`int8flow launch`: N copies of a command, each pinned to cores of its own.

Like ITEX's launcher and `ipexrun --ninstances`: the cores this process may
use (its affinity mask) are split into disjoint sets, one per instance, within
one NUMA node each with `--numa`. Each child runs with its set as its affinity
mask and `OMP_NUM_THREADS` / `TF_NUM_INTRAOP_THREADS` set to its size, so
oneDNN and TF size their threads to it (`int8flow.cpu_features()["threads"]`),
and with `INT8FLOW_INSTANCE` (0-based) / `INT8FLOW_INSTANCES` to tell it which
one it is. SIGINT, SIGTERM and SIGHUP go on to every child. The first child to
fail stops the others (SIGTERM), and its exit code is the launcher's.
"""
from __future__ import annotations

import argparse
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
NODES = Path("/sys/devices/system/node")


def parse_cpu_list(text: str) -> set[int]:
    """The CPUs of a Linux cpulist ("0-3,8,10-11")."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if part:
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    return cpus


def numa_nodes() -> list[set[int]]:
    """Each NUMA node's CPUs, from sysfs; one node holding every CPU where sysfs has none."""
    nodes = [parse_cpu_list((d / "cpulist").read_text()) for d in sorted(NODES.glob("node[0-9]*"))]
    return [n for n in nodes if n] or [set(range(os.cpu_count() or 1))]


def partition(available: Sequence[int], instances: int, cores_per_instance: int | None = None,
              nodes: Sequence[set[int]] | None = None) -> list[list[int]]:
    """Disjoint core sets, one per instance, of `cores_per_instance` cores each (default:
    an equal share of `available`). With `nodes` (NUMA), no set spans two nodes."""
    if instances < 1:
        raise ValueError(f"--instances must be at least 1, got {instances}")
    cores = sorted(set(available))
    size = cores_per_instance if cores_per_instance is not None else len(cores) // instances
    if size < 1:
        raise ValueError(f"{instances} instances need at least {instances} cores; this process may use "
                         f"{len(cores)} ({_cpu_list(cores)})")
    groups = [sorted(set(cores) & node) for node in nodes] if nodes else [cores]
    sets = [group[i:i + size] for group in groups for i in range(0, len(group) - size + 1, size)]
    if len(sets) < instances:
        where = f", {size} per NUMA node set: nodes hold {[len(g) for g in groups]}" if nodes else ""
        raise ValueError(f"{instances} instances of {size} cores need {instances * size} cores; this process "
                         f"may use {len(cores)} ({_cpu_list(cores)}){where}")
    return sets[:instances]


def _cpu_list(cores: Sequence[int]) -> str:
    return ",".join(str(c) for c in cores)


def child_environment(base: dict[str, str], index: int, instances: int, cores: Sequence[int]) -> dict[str, str]:
    """The environment of instance `index`: its thread counts and who it is."""
    threads = str(len(cores))
    return {**base, "OMP_NUM_THREADS": threads, "TF_NUM_INTRAOP_THREADS": threads,
            "INT8FLOW_INSTANCE": str(index), "INT8FLOW_INSTANCES": str(instances),
            "INT8FLOW_CORES": _cpu_list(cores)}


def exit_code(status: int) -> int:
    """A child's `os.wait` status as a shell reports it (128 + signal when killed)."""
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def launch(command: Sequence[str], instances: int, cores_per_instance: int | None = None,
           numa: bool = False) -> int:
    """Run `instances` copies of `command`, pinned (module docstring); the exit code."""
    if not command:
        raise ValueError("no command to launch: int8flow launch --instances N -- CMD ARGS")
    sets = partition(sorted(os.sched_getaffinity(0)), instances, cores_per_instance,
                     numa_nodes() if numa else None)
    # The children not yet reaped, by pid: only os.wait() below reaps them
    # (Popen.poll would, and hide a failure), so a pid here is never reused.
    children: dict[int, subprocess.Popen[bytes]] = {}

    def forward(signum: int, _frame: FrameType | None) -> None:
        for pid in list(children):
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    previous = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}
    try:
        for index, cores in enumerate(sets):
            try:
                env = child_environment(dict(os.environ), index, instances, cores)
                child = subprocess.Popen(list(command), env=env,
                                         preexec_fn=functools.partial(os.sched_setaffinity, 0, cores))
            except OSError as e:
                print(f"int8flow launch: cannot start {command[0]}: {e}", file=sys.stderr)
                forward(signal.SIGTERM, None)
                for started in children.values():
                    started.wait()
                return 127
            children[child.pid] = child
        failed = 0
        while children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            reaped = children.pop(pid, None)
            if reaped is None:
                continue
            reaped.returncode = exit_code(status)
            if reaped.returncode and not failed:
                failed = reaped.returncode
                forward(signal.SIGTERM, None)
        return failed
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="int8flow launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, required=True, help="how many copies of the command")
    parser.add_argument("--cores-per-instance", type=int,
                        help="cores each copy gets (default: an equal share of this process's cores)")
    parser.add_argument("--numa", action="store_true", help="keep each copy's cores within one NUMA node")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS: the command to run")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    try:
        return launch(command, args.instances, args.cores_per_instance, args.numa)
    except ValueError as e:
        parser.error(str(e))
        raise AssertionError("unreachable") from e
