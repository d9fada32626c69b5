"""`python -m uet_doit.tools.sandbox.landlock_exec --write DIR... -- ARGV`: run ARGV where only the
named folders (and files) can be written, by a Landlock ruleset (Linux 5.13+).

Landlock is how a process fences itself in without privileges: a ruleset names the kinds
of access it handles (here: every way of writing), rules grant them beneath some paths, and
after `restrict_self` the process and everything it starts can write nowhere else. Reading
and executing stay allowed everywhere; the network is not touched. Unlike a bind mount it
cannot take back part of a writable folder, so a read-only `.git` inside a writable project
root needs bubblewrap.
"""

from __future__ import annotations

import ctypes
import os
import sys

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every architecture
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_WRITE_FILE = 1 << 1
#: every way of writing that the ABI version knows (execute and read stay allowed)
_DIR_RIGHTS_BY_ABI = {
    1: _WRITE_FILE | sum(1 << bit for bit in range(4, 13)),  # remove, make_* (char...sym)
    2: 1 << 13,  # refer (rename/link across folders)
    3: 1 << 14,  # truncate
}
_FILE_RIGHTS = _WRITE_FILE | (1 << 14)


class _RulesetAttr(ctypes.Structure):
    _fields_ = (("handled_access_fs", ctypes.c_uint64),)


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or switched off."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        version = int(_libc().syscall(_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(version, 0)


def restrict(writable: list[str]) -> None:
    """Fence this process in: from now on it writes only beneath `writable`."""
    abi = abi_version()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    rights = sum(r for version, r in _DIR_RIGHTS_BY_ABI.items() if version <= abi)
    file_rights = _FILE_RIGHTS if abi >= 3 else _WRITE_FILE
    libc = _libc()
    attr = _RulesetAttr(rights)
    fd = int(libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), 0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for path in writable:
            try:
                target = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                allowed = rights if os.path.isdir(path) else file_rights
                rule = _PathBeneath(allowed, target)
                if libc.syscall(_ADD_RULE, fd, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
            finally:
                os.close(target)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_RESTRICT_SELF, fd, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: landlock_exec [--write PATH]... -- ARGV", file=sys.stderr)
        return 2
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    writable = [options[i + 1] for i, opt in enumerate(options[:-1]) if opt == "--write"]
    if not command:
        print("landlock_exec: no command after --", file=sys.stderr)
        return 2
    try:
        restrict(writable)
    except OSError as exc:
        print(f"uet sandbox (landlock): {exc}", file=sys.stderr)
        return 126
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"uet sandbox (landlock): {command[0]}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
