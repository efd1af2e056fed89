"""The sandbox's syscall filter: a classic-BPF seccomp program for bwrap's `--seccomp FD`.

What it refuses (ENOSYS), and why:
- `add_key`, `request_key`, `keyctl`: kernel keyrings are not namespaced by anything
  bubblewrap unshares. Keys belong to the host uid, so every sandbox (all run as the same
  uid) could leave data in a keyring for a later run, or for a run in another sandbox at
  the same time, to read.
- every syscall of a foreign ABI (i386 via `int 0x80`, x32 on x86-64): the numbers above
  differ there, and nothing we run needs them.
Everything else is allowed: the namespaces, rlimits and cgroups are the sandbox; this
closes one channel they leave open.

Layout of `struct seccomp_data` (linux/seccomp.h): nr at offset 0, arch at offset 4.
"""
from __future__ import annotations

import errno
import os
import platform
import struct

# linux/filter.h, linux/bpf_common.h
_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_X32_BIT = 0x40000000

# (AUDIT_ARCH_*, add_key, request_key, keyctl) per machine
_ARCHES = {
    "x86_64": (0xC000003E, (248, 249, 250)),
    "aarch64": (0xC00000B7, (217, 218, 219)),
}


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def keyring_filter(machine: str | None = None) -> bytes | None:
    """The BPF program (bytes of `struct sock_filter[]`) for this machine, or None where
    its syscall numbers are not known here (the filter is then not in force)."""
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, numbers = arch
    deny = _RET_ERRNO | errno.ENOSYS
    prog = [
        _insn(_LD_W_ABS, 0, 0, 4),                          # 0: A = arch
        _insn(_JEQ_K, 1, 0, audit_arch),                    # 1: native? -> 3
        _insn(_RET_K, 0, 0, deny),                          # 2: foreign ABI: refuse
        _insn(_LD_W_ABS, 0, 0, 0),                          # 3: A = nr
        _insn(_JGE_K, 4, 0, _X32_BIT),                      # 4: x32 -> 9
    ]
    for i, nr in enumerate(numbers):                        # 5, 6, 7: keyring calls -> 9
        prog.append(_insn(_JEQ_K, 3 - i, 0, nr))
    prog += [_insn(_RET_K, 0, 0, _RET_ALLOW),               # 8
             _insn(_RET_K, 0, 0, deny)]                     # 9
    return b"".join(prog)


def filter_fd(program: bytes) -> int:
    """A fresh, inheritable descriptor holding `program`, positioned at 0, for one bwrap
    (each bwrap reads its own: a shared offset would race). The caller closes it."""
    fd = os.memfd_create("seccomp", 0)
    view = memoryview(program)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
