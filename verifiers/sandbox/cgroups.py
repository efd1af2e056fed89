"""Per-run cgroups for memory and process count, where the host lets us create them.

Two layouts are handled:
- cgroup v1 (or hybrid): a `memory` and a `pids` hierarchy, each mounted on its own;
  we create `<our cgroup>/rlvr-sandbox/<run>` in each.
- cgroup v2 with the `memory` and `pids` controllers enabled in our cgroup's
  `cgroup.subtree_control` (a delegated subtree): one directory per run.

`CgroupManager.probe()` tries once and remembers why it cannot (not root, read-only
cgroupfs, controller missing); every limit then falls back to rlimits alone, and
`limits_in_force()` says so. A run joins its cgroups before the sandbox starts (the
launcher writes its own pid into `cgroup.procs` and then execs), so nothing the program
forks escapes them.
"""
from __future__ import annotations

import itertools
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_counter = itertools.count()


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fstype, super options) of each cgroup mount, from mountinfo."""
    out = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        left, _, right = line.partition(" - ")
        parts, rparts = left.split(), right.split()
        if len(parts) < 5 or len(rparts) < 3 or rparts[0] not in ("cgroup", "cgroup2"):
            continue
        out.append((parts[4], rparts[0], set(rparts[2].split(","))))
    return out


def _own_paths() -> dict[str, str]:
    """Controller (or '' for v2) -> our cgroup path, from /proc/self/cgroup."""
    out: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        _, ctrls, path = line.split(":", 2)
        for c in (ctrls.split(",") if ctrls else [""]):
            out[c] = path
    return out


@dataclass
class RunCgroup:
    """The cgroup directories of one run. `procs_files` are what the launcher joins."""

    dirs: list[Path]
    memory_dir: Path | None
    v2: bool
    cpu_dir: Path | None = None

    @property
    def procs_files(self) -> list[str]:
        return [str(d / "cgroup.procs") for d in self.dirs]

    def _read(self, name: str) -> str:
        try:
            return (self.memory_dir / name).read_text() if self.memory_dir else ""
        except OSError:
            return ""

    def oom_kill_count(self) -> int:
        """How many tasks the kernel OOM-killed at this cgroup's memory limit so far."""
        name = "memory.events" if self.v2 else "memory.oom_control"
        fields = dict(line.split() for line in self._read(name).splitlines() if len(line.split()) == 2)
        try:
            return int(fields.get("oom_kill", 0))
        except ValueError:
            return 0

    def oom_killed(self) -> bool:
        """Whether the kernel OOM-killed a task of the run at the memory limit."""
        return self.oom_kill_count() > 0

    def set_memory_limit(self, memory_bytes: int) -> None:
        """Change the memory limit (a cgroup reused across runs: the pre-forked interpreter).
        Raises OSError if the kernel refuses it."""
        if self.memory_dir is None:
            return
        if self.v2:
            (self.memory_dir / "memory.max").write_text(str(memory_bytes))
            return
        mem, memsw = self.memory_dir / "memory.limit_in_bytes", self.memory_dir / "memory.memsw.limit_in_bytes"
        if not memsw.exists():
            mem.write_text(str(memory_bytes))
            return
        # v1 keeps memory <= memory+swap at every moment: order the two writes accordingly.
        first, second = (memsw, mem) if memory_bytes > int(mem.read_text()) else (mem, memsw)
        first.write_text(str(memory_bytes))
        second.write_text(str(memory_bytes))

    def set_pids_limit(self, processes: int) -> None:
        """Change the pids limit (raises OSError if the kernel refuses it)."""
        for d in self.dirs:
            if (d / "pids.max").exists():
                (d / "pids.max").write_text(str(processes))

    def unreclaimable_bytes(self) -> int:
        """Charged memory the kernel cannot reclaim under pressure: anonymous pages, shmem
        (tmpfs, memfds, SysV) and unevictable pages (page cache excluded)."""
        fields = dict(line.split() for line in self._read("memory.stat").splitlines() if len(line.split()) == 2)
        keys = (("anon", "shmem", "unevictable") if self.v2
                else ("total_rss", "total_shmem", "total_unevictable"))
        try:
            return sum(int(fields.get(k, 0)) for k in keys)
        except ValueError:
            return 0

    def memory_usage_bytes(self) -> int:
        text = self._read("memory.current" if self.v2 else "memory.usage_in_bytes").strip()
        return int(text) if text.isdigit() else 0

    def reset_peak(self) -> None:
        """Start peak-memory accounting afresh (cgroup v1; v2's memory.peak on new kernels)."""
        if self.memory_dir is None:
            return
        try:
            (self.memory_dir / ("memory.peak" if self.v2 else "memory.max_usage_in_bytes")).write_text("0")
        except OSError:
            pass

    def cpu_time_s(self) -> float | None:
        """CPU time used by every task of the run (they need not have been reaped)."""
        try:
            if self.v2 and self.memory_dir is not None:
                stat = dict(line.split() for line in (self.memory_dir / "cpu.stat").read_text().splitlines())
                return int(stat["usage_usec"]) / 1e6
            if self.cpu_dir is not None:
                return int((self.cpu_dir / "cpuacct.usage").read_text()) / 1e9
        except (OSError, KeyError, ValueError):
            pass
        return None

    def peak_memory_bytes(self) -> int | None:
        text = self._read("memory.peak" if self.v2 else "memory.max_usage_in_bytes").strip()
        return int(text) if text.isdigit() else None

    def kill_all(self) -> int:
        """SIGKILL every task still in the run's cgroups; returns how many there were."""
        n = 0
        for d in self.dirs:
            for _ in range(50):
                try:
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except (OSError, ValueError):
                    break
                if not pids:
                    break
                n += len(pids)
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.002)
        return n

    def remove(self) -> None:
        self.kill_all()
        for d in self.dirs:
            for _ in range(100):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.005)


class CgroupManager:
    """Creates per-run cgroups with memory and pids limits, if this host permits."""

    def __init__(self, prefix: str = "rlvr-sandbox") -> None:
        self.prefix = prefix  # one shared parent; runs are p<pid>-r<n> under it
        self._lock = threading.Lock()
        self._probed = False
        self.memory_parent: Path | None = None
        self.pids_parent: Path | None = None
        self.cpuacct_parent: Path | None = None
        self.v2 = False
        self.reason = ""

    def probe(self) -> tuple[bool, bool, str]:
        """(memory limit available, pids limit available, why not)."""
        with self._lock:
            if not self._probed:
                self._probed = True
                self._probe()
        return self.memory_parent is not None, self.pids_parent is not None, self.reason

    def _probe(self) -> None:
        if os.geteuid() != 0:
            self.reason = "cgroups need root (or a delegated cgroup v2 subtree) and this process is not root"
        own, reasons = _own_paths(), []
        for mnt, fstype, _opts in _mounts():
            if fstype == "cgroup2":
                path = Path(mnt) / own.get("", "/").lstrip("/")
                try:
                    sub = set((path / "cgroup.subtree_control").read_text().split())
                except OSError:
                    continue
                if {"memory", "pids"} <= sub:
                    parent = path / self.prefix
                    if self._try_parent(parent, ["memory.max", "pids.max"], reasons):
                        self.memory_parent = self.pids_parent = parent
                        self.v2 = True
                        return
                else:
                    reasons.append(f"cgroup v2 at {path}: memory/pids not delegated (subtree_control: "
                                   f"{' '.join(sorted(sub)) or 'empty'})")
        for mnt, fstype, opts in _mounts():
            if fstype != "cgroup":
                continue
            for ctrl, probe_file in (("memory", "memory.limit_in_bytes"), ("pids", "pids.max"),
                                     ("cpuacct", "cpuacct.usage")):
                if ctrl not in opts or getattr(self, f"{ctrl}_parent") is not None:
                    continue
                parent = Path(mnt) / own.get(ctrl, "/").lstrip("/") / self.prefix
                if self._try_parent(parent, [probe_file], reasons):
                    setattr(self, f"{ctrl}_parent", parent)
        if self.memory_parent is None or self.pids_parent is None:
            missing = [c for c in ("memory", "pids") if getattr(self, f"{c}_parent") is None]
            self.reason = (self.reason or "; ".join(reasons) or
                           f"no writable cgroup hierarchy with the {'/'.join(missing)} controller")

    @staticmethod
    def _try_parent(parent: Path, probe_files: list[str], reasons: list[str]) -> bool:
        try:
            parent.mkdir(exist_ok=True)
            test = parent / f"probe-{next(_counter)}"
            test.mkdir()
            try:
                for f in probe_files:
                    if not (test / f).exists():
                        raise OSError(f"{f} missing")
            finally:
                test.rmdir()
            return True
        except OSError as e:
            reasons.append(f"{parent}: {e.strerror or e}")
            return False

    @staticmethod
    def _run_dir(parent: Path, name: str) -> Path:
        """Make `parent/name`. The parent is shared by every backend on this host, and one
        that closes removes it when it is empty for a moment (cleanup()): make it again."""
        d = parent / name
        for attempt in range(3):
            try:
                d.mkdir()
                return d
            except FileNotFoundError:
                if attempt == 2:
                    raise
                parent.mkdir(exist_ok=True)
        return d

    def create(self, memory_bytes: int | None, processes: int | None) -> RunCgroup | None:
        """A fresh cgroup (set) for one run, limits written; None if none available."""
        mem_ok, pids_ok, _ = self.probe()
        if not (mem_ok or pids_ok):
            return None
        name = f"p{os.getpid()}-r{next(_counter)}"
        dirs: list[Path] = []
        memory_dir = None
        try:
            if self.v2:
                d = self._run_dir(self.memory_parent, name)  # type: ignore[arg-type]
                dirs.append(d)
                if memory_bytes:
                    (d / "memory.max").write_text(str(memory_bytes))
                    if (d / "memory.swap.max").exists():
                        (d / "memory.swap.max").write_text("0")
                if processes:
                    (d / "pids.max").write_text(str(processes))
                return RunCgroup(dirs, d, True)
            if mem_ok:
                d = self._run_dir(self.memory_parent, name)  # type: ignore[arg-type]
                dirs.append(d)
                memory_dir = d
                if memory_bytes:
                    (d / "memory.limit_in_bytes").write_text(str(memory_bytes))
                    sw = d / "memory.memsw.limit_in_bytes"
                    if sw.exists():
                        try:
                            sw.write_text(str(memory_bytes))
                        except OSError:
                            pass
            if pids_ok:
                d = self._run_dir(self.pids_parent, name)  # type: ignore[arg-type]
                dirs.append(d)
                if processes:
                    (d / "pids.max").write_text(str(processes))
            cpu_dir = None
            if self.cpuacct_parent is not None and self.cpuacct_parent not in (self.memory_parent, self.pids_parent):
                cpu_dir = self._run_dir(self.cpuacct_parent, name)
                dirs.append(cpu_dir)
            return RunCgroup(dirs, memory_dir, False, cpu_dir)
        except OSError:
            RunCgroup(dirs, memory_dir, self.v2).remove()
            raise

    def cleanup(self) -> None:
        """Remove the shared parent directories if no run uses them (best effort)."""
        for p in {self.memory_parent, self.pids_parent, self.cpuacct_parent} - {None}:
            try:
                p.rmdir()  # type: ignore[union-attr]
            except OSError:
                pass  # another process's runs are in it
