"""Running Python GPU-library code through the real stack for tests: an embedded default (`tensorfusion up
--backend emu`, real scheduler + worker processes) and scripts run in their own interpreter that call
tfclient.attach() before importing the library, exactly as a user does.

Imported by tests/test_pylibs_cupy.py and tests/test_pylibs_torch.py (`from attached import ...`).
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

CLI = [sys.executable, "-m", "tfclient.cli"]
# What must never show at a clean exit of an attached process.
UNCLEAN = ("Traceback", "Broken pipe", "connection to the GPU worker lost", "Exception ignored")


class EmbeddedEmu:
    """`tensorfusion up --backend emu` in its own session under tf_home; .env points clients at it."""

    def __init__(self, tf_home: Path, timeout: float = 60.0):
        self.env = dict(os.environ)
        self.env["TF_HOME"] = str(tf_home)
        self.env.pop("TF_SCHEDULER", None)
        # Its output (and the GPU worker processes', e.g. one emulator line per SASS-only module torch
        # registers) goes to a file: an unread pipe fills up and blocks the worker mid-call.
        self.log = tf_home / "up-test.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([*CLI, "up", "--backend", "emu"], env=self.env, start_new_session=True,
                                         stdout=log, stderr=subprocess.STDOUT)
        state = tf_home / "embedded.json"
        deadline = time.time() + timeout
        while not state.exists():
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError(f"`tensorfusion up` did not come up: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def status(self) -> str:
        return subprocess.run([*CLI, "status"], env=self.env, capture_output=True, text=True, check=True,
                              timeout=60).stdout

    def run_script(self, code: str, tmp_path: Path, *args: str, env: dict | None = None,
                   timeout: float = 300) -> subprocess.CompletedProcess:
        """Runs code (dedented) as a script in a fresh interpreter with this embedded default's env."""
        script = tmp_path / "attached_script.py"
        script.write_text(textwrap.dedent(code))
        full = dict(self.env)
        full.update(env or {})
        return subprocess.run([sys.executable, str(script), *args], env=full, capture_output=True, text=True,
                              timeout=timeout, cwd=tmp_path)


def assert_clean(r: subprocess.CompletedProcess) -> None:
    """Exit 0 and nothing a user would read as a failure on stderr."""
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    for bad in UNCLEAN:
        assert bad not in r.stderr, f"{bad!r} at exit:\n{r.stderr}"
