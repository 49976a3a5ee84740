"""Native limiter, shared-memory region: tfworker/limits.py matches the C layout (limiter_c/tf_limiter_shm.h,
compiled here), limits round-trip through the seqlock, and misuse is refused."""
import os
import subprocess

import pytest

from limiter_helpers import session_id
from tfclient import native
from tfworker import limits as L
from tfworker.limits import SessionLimits

HEADER_DIR = native.REPO_ROOT / "limiter_c"

PRINT_OFFSETS = r"""
#include <stddef.h>
#include <stdio.h>
#include "tf_limiter_shm.h"
#define P(t, n, c) printf("%s %zu %zu %s\n", #n, offsetof(tf_shm_region, n), sizeof(((tf_shm_region *)0)->n), #t);
int main(void) { TF_SHM_FIELDS(P) printf("SIZE %zu 0 -\nMAGIC %u 0 -\nVERSION %u 0 -\n", sizeof(tf_shm_region),
                 TF_SHM_MAGIC, TF_SHM_VERSION);
                 printf("SLOTS_OFFSET %zu 0 -\nSLOTS %u 0 -\nSLOT_SIZE %zu 0 -\n", offsetof(tf_shm_region, slots),
                 TF_SHM_SLOTS, sizeof(tf_shm_slot)); return 0; }
"""


def test_python_layout_matches_the_c_header(tmp_path):
    src = tmp_path / "offsets.c"
    src.write_text(PRINT_OFFSETS)
    exe = tmp_path / "offsets"
    subprocess.run(["cc", "-std=gnu11", "-Wall", "-Werror", f"-I{HEADER_DIR}", "-o", str(exe), str(src)], check=True)
    rows = [line.split() for line in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.splitlines()]
    const_names = ("SIZE", "MAGIC", "VERSION", "SLOTS_OFFSET", "SLOTS", "SLOT_SIZE")
    c_fields = [(name, int(off), int(size), t) for name, off, size, t in rows if name not in const_names]
    consts = {name: int(off) for name, off, _, _ in rows if name in const_names}
    codes = {"u32": "I", "u64": "Q", "f64": "d"}
    assert [n for n, *_ in c_fields] == [n for n, _ in L.FIELDS]
    for name, off, size, t in c_fields:
        assert L.OFFSETS[name] == (off, codes[t]), name
    assert L.SIZE == consts["SIZE"] and L.MAGIC == consts["MAGIC"] and L.VERSION == consts["VERSION"]
    assert (L.SLOTS_OFFSET, L.SLOTS, L.SLOT_SIZE) == (consts["SLOTS_OFFSET"], consts["SLOTS"], consts["SLOT_SIZE"])


def test_limits_round_trip_and_update_keeps_unset_values():
    with L.SessionLimits.create(session_id("rt"), vram_limit_bytes=3 << 30, tflops_limit=12.5, device_tflops=50) as s:
        assert s.shm_name == f"/tf-{s.session_id}" and os.path.exists(f"/dev/shm/tf-{s.session_id}")
        assert s.env == {"TF_LIMITER_SHM": s.shm_name}
        assert s.limits() == L.Limits(3 << 30, 12.5, 50.0)
        s.update(tflops_limit=40)
        assert s.limits() == L.Limits(3 << 30, 40.0, 50.0)
        s.update(vram_limit_bytes=0)
        assert s.limits() == L.Limits(0, 40.0, 50.0)
        other = L.SessionLimits.open(s.session_id)  # the daemon re-attaching after a restart
        assert other.limits() == s.limits() and other.usage().launches == 0
        other.close()
        assert os.path.exists(s.path)              # only the creator unlinks
    assert not os.path.exists(s.path)


def test_bad_session_ids_and_limits_are_refused():
    with pytest.raises(ValueError):
        L.SessionLimits.create("../etc/passwd")
    with pytest.raises(ValueError):
        L.SessionLimits.create(session_id("neg"), vram_limit_bytes=-1)
    with pytest.raises(L.LimiterRegionError):
        L.SessionLimits.open(session_id("absent"))


def test_local_env_preloads_the_limiter_and_keeps_other_preloads():
    env = L.local_env(vram_limit_bytes=1 << 30, tflops_limit=10, device_tflops=40, base={"LD_PRELOAD": "/x/libfoo.so"})
    assert env["LD_PRELOAD"].split(":") == [str(native.limiter_lib()), "/x/libfoo.so"]
    assert env["TF_VRAM_LIMIT"] == str(1 << 30)
    assert float(env["TF_TFLOPS_LIMIT"]) == 10 and float(env["TF_DEVICE_TFLOPS"]) == 40
    assert "TF_TFLOPS_LIMIT" not in L.local_env(vram_limit_bytes=1 << 30, base={})
    with pytest.raises(ValueError):
        L.local_env(tflops_limit=10, base={})


@pytest.mark.parametrize("bad", [dict(vram_limit_bytes=-1), dict(tflops_limit=float("nan")), dict(device_tflops=-2.0),
                                 dict(vram_limit_bytes=1 << 64), dict(vram_limit_bytes=1.5)])
def test_create_with_a_bad_limit_raises_and_leaves_no_region(bad):
    sid = session_id("bad")
    with pytest.raises(ValueError):
        SessionLimits.create(sid, **bad)
    assert not os.path.exists(f"/dev/shm/tf-{sid}")


def test_a_second_daemon_of_the_same_identity_reaps_nothing_of_the_first(tmp_path):
    from tfworker.limits import WorkerIdentity, worker_tag
    first = WorkerIdentity(str(tmp_path), "node-x")
    second = WorkerIdentity(str(tmp_path), "node-x")
    try:
        assert first.reaps and first.tag == worker_tag(str(tmp_path), "node-x")
        assert not second.reaps and second.tag != first.tag
    finally:
        first.close()
        second.close()
    again = WorkerIdentity(str(tmp_path), "node-x")    # the first is gone: its successor reaps
    assert again.reaps and again.tag == first.tag
    again.close()
