"""Releases a vGPU once a given process has exited: `python -m tfclient.release_after PID SCHEDULER ALLOCATION`.

Started (detached, its output to $TF_HOME/release_after.log) by tfclient.attach at interpreter exit when this
process's stub still holds an open session: CUDA libraries keep calling the driver after Python's atexit
handlers (CuPy unloads its modules and frees its memory pool in finalizers that run during interpreter
teardown), so the vGPU must outlive the process's last CUDA call. This helper waits for the process to be
gone (pidfd, else polling /proc), then gives the allocation back with one Release call.
"""
import os
import select
import sys
import time


def wait_for_exit(pid: int, poll_s: float = 0.05) -> None:
    """Returns once process pid no longer exists (any owner; a zombie counts as gone)."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            while not p.poll(1000):
                pass
            return
        finally:
            os.close(fd)
    while _alive(pid):
        time.sleep(poll_s)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) != 3 or not argv[0].isdigit():
        print("usage: python -m tfclient.release_after PID SCHEDULER ALLOCATION_ID", file=sys.stderr)
        return 2
    pid, scheduler, allocation = int(argv[0]), argv[1], argv[2]
    wait_for_exit(pid)
    from tfclient.errors import NotFound, TensorFusionError
    from tfclient.scheduler_client import SchedulerClient
    try:
        with SchedulerClient(scheduler) as client:
            client.release(allocation)
    except NotFound:
        pass
    except TensorFusionError as e:   # the lease then ends by itself when its TTL passes
        print(f"tfclient.release_after: releasing {allocation} after pid {pid} exited failed: {e}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
