"""Where the CPU went while a mode was driven: each server's process tree and the whole machine, from /proc.

On a 2-core machine the app, the trace server, the stand-in and the driver share the cores, so req/s alone
cannot say what held a mode back. Linux only: elsewhere every figure is None and the benchmark still runs.
"""

from __future__ import annotations

import os
import resource
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses): field 3 onwards."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def _processes() -> tuple[dict[int, int], dict[int, int]] | None:
    """Every live process's parent and its CPU clock ticks (its own and its ended children's), or None
    without /proc."""
    if not PROC.is_dir():
        return None
    parent_of: dict[int, int] = {}
    ticks_of: dict[int, int] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is None:  # ended while we looked
            continue
        # fields[1] is the parent (stat field 4); [11:15] are utime, stime, cutime, cstime (fields 14-17)
        parent_of[int(entry.name)] = int(fields[1])
        ticks_of[int(entry.name)] = sum(int(value) for value in fields[11:15])
    return parent_of, ticks_of


def _tree_seconds(root: int, parent_of: dict[int, int], ticks_of: dict[int, int]) -> float | None:
    if root not in ticks_of:
        return None
    in_tree, total = {root}, 0
    for pid in sorted(ticks_of):  # a child's pid may be lower than its parent's after wrap-around: walk up
        ancestor = pid
        while ancestor not in in_tree and ancestor in parent_of and parent_of[ancestor] not in (0, ancestor):
            ancestor = parent_of[ancestor]
        if ancestor in in_tree:
            total += ticks_of[pid]
    return total / CLOCK_TICKS


def tree_cpu_seconds(root: int) -> float | None:
    """User + system CPU seconds of `root` and every live descendant (a `--workers 2` app's workers, the
    uvicorn that `mlflow server` starts), plus what they collected from children that ended."""
    processes = _processes()
    return None if processes is None else _tree_seconds(root, *processes)


def machine_cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of all cores since boot, from /proc/stat: idle and iowait are not busy."""
    try:
        first = (PROC / "stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    ticks = [int(value) for value in first[1:9]]  # user nice system idle iowait irq softirq steal
    total = sum(ticks)
    return (total - ticks[3] - ticks[4]) / CLOCK_TICKS, total / CLOCK_TICKS


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Reading:
    trees: dict[str, float | None]
    driver: float
    machine: tuple[float, float] | None


def read(servers: Mapping[str, int]) -> Reading:
    """CPU seconds so far of each named server's process tree, of this process (the driver) and the machine."""
    processes = _processes()  # one pass over /proc for every tree
    trees = {name: None if processes is None else _tree_seconds(pid, *processes) for name, pid in servers.items()}
    return Reading(trees, own_cpu_seconds(), machine_cpu_seconds())


def spent(before: Reading, after: Reading, requests: int) -> dict:
    """Milliseconds of CPU per request of each server, the driver and the rest of the machine (the stand-in,
    other work), and how busy all cores were: `machine_busy` 1.0 means every core was busy all along."""
    def per_request(seconds: float) -> float:
        return round(1000 * seconds / requests, 2)
    figures: dict = {name: None if before.trees[name] is None or after.trees[name] is None
                     else per_request(after.trees[name] - before.trees[name]) for name in before.trees}
    figures["driver"] = per_request(after.driver - before.driver)
    if before.machine is None or after.machine is None:
        return {"cpu_ms_per_request": {**figures, "rest": None}, "machine_busy": None}
    busy, total = (after.machine[index] - before.machine[index] for index in (0, 1))
    counted = sum(value for value in figures.values() if value is not None)
    figures["rest"] = round(max(per_request(busy) - counted, 0.0), 2)
    return {"cpu_ms_per_request": figures, "machine_busy": round(busy / total, 2) if total else None}


# ---------------------------------------------------------------------------------------------------- pinning
# `--app-cpus`: the app alone on some cores, the driver, the stand-in and the trace server on the others, as a
# deployed app has its compute to itself and the workspace's services run elsewhere.

PIN_THEN_EXEC = "import os, sys; os.sched_setaffinity(0, {int(c) for c in sys.argv[1].split(',')}); " \
                "os.execvp(sys.argv[2], sys.argv[2:])"


def parse_cpus(text: str) -> set[int]:
    """`0` or `0,2`: the CPUs the apps run on. ValueError names what is wrong."""
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("pinning needs os.sched_setaffinity (Linux)")
    try:
        cpus = {int(part) for part in text.split(",")}
    except ValueError:
        raise ValueError(f"{text!r} is not a comma-separated list of CPU numbers, e.g. 0 or 0,2") from None
    available = os.sched_getaffinity(0)
    if not cpus <= available or not available - cpus:
        raise ValueError(f"CPUs {sorted(cpus)} must be among this process's {sorted(available)} and leave at "
                         "least one for the driver, the stand-in and the trace server")
    return cpus


def keep_off(cpus: set[int]) -> None:
    """This process, and every process it starts from now on (the stand-in, the trace server), leaves `cpus`
    to the apps."""
    os.sched_setaffinity(0, os.sched_getaffinity(0) - cpus)


def pinned_argv(argv: list[str], cpus: set[int]) -> list[str]:
    """`argv` run on `cpus` only: a tiny interpreter sets the affinity and execs it, so the server keeps its pid
    and process group, and every process and thread it starts inherits the pinning."""
    return [sys.executable, "-c", PIN_THEN_EXEC, ",".join(map(str, sorted(cpus))), *argv]
