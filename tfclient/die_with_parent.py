"""Starts `tensorfusion run`'s command so that it dies with `run`, however `run` ends (even kill -9):
`python -I -S die_with_parent.py PARENT_PID CMD ARGS...` asks the kernel for SIGKILL when its parent dies (Linux
PR_SET_PDEATHSIG, kept across execve) and then execs CMD in its place (same process, same arguments).

Run by tfclient.cli._spawn as a script (no package imports). Why not a process group: only a live `run` could
signal the group, and a command in a group of its own loses the terminal (Ctrl-C, reads from it). Why not
subprocess's preexec_fn: forking `run` while its gRPC threads (lease renewal) are in a call crashes the child in
gRPC's fork handlers. The command holds its vGPU's session; left running, the worker's heartbeats kept the
allocation alive as long as it ran. Its own children are its business, as with any parent.
"""
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1     # <linux/prctl.h>


def main(argv: list[str]) -> int:
    parent, cmd = int(argv[0]), argv[1:]
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        print(f"tensorfusion run: cannot tie {cmd[0]} to run's life (prctl: {os.strerror(ctypes.get_errno())})",
              file=sys.stderr)
        return 126
    if os.getppid() != parent:      # `run` died before the prctl: it would never come
        return 137
    try:
        os.execvp(cmd[0], cmd)
    except OSError as e:
        print(f"tensorfusion run: cannot run {cmd[0]}: {e.strerror or e}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
