"""The run folder's lease (nasbench_pc/runtime/lease.py): one writer at a time, across processes and hosts,
taken over only when stale, dead on this host, or by the same (requeued) cluster job."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from nasbench_pc.errors import ConfigError
from nasbench_pc.runtime.lease import LEASE, Holder, Lease, LeaseHeld, job_id, read_holder, takeover_reason


def _plant(run: Path, **fields) -> Holder:
    """A lease as another writer would have written it."""
    now = time.time()
    holder = Holder(**{"host": "node17", "pid": 999_999, "job": None, "token": "othertoken", "started": now,
                       "heartbeat": now, **fields})
    run.mkdir(parents=True, exist_ok=True)
    (run / LEASE).write_text(json.dumps(asdict(holder)))
    return holder


def test_job_id_reads_slurm_array_task_then_job_then_our_own_variable():
    assert job_id({"SLURM_ARRAY_JOB_ID": "41", "SLURM_ARRAY_TASK_ID": "3", "SLURM_JOB_ID": "44"}) == "41_3"
    assert job_id({"SLURM_JOB_ID": "44"}) == "44"
    assert job_id({"NASBENCH_PC_JOB_ID": "ray-7"}) == "ray-7"
    assert job_id({}) is None


def test_a_lease_is_exclusive_names_its_holder_and_is_removed_on_release(tmp_path):
    run = tmp_path / "run"
    with Lease(run) as lease:
        holder = read_holder(run / LEASE)
        assert (holder.host, holder.pid, holder.token) == (socket.gethostname(), os.getpid(), lease.me.token)
        with pytest.raises(LeaseHeld) as held:  # a second writer in this very process is refused as well
            Lease(run).acquire()
        text = " ".join(str(held.value).split())
        assert f"{run} is being written by another process (pid {os.getpid()} on {socket.gethostname()}" in text
        assert "goes stale 300 s after its last heartbeat" in text
        assert isinstance(held.value, ConfigError)
    assert not (run / LEASE).exists()


def test_takeover_rules():
    me = Holder(host="a", pid=os.getpid(), job=None, token="me", started=0.0, heartbeat=0.0)
    now = 1000.0
    live_elsewhere = Holder(host="b", pid=1, job=None, token="x", started=0.0, heartbeat=now - 299)
    assert takeover_reason(live_elsewhere, me, 300, now) is None
    assert takeover_reason(Holder(**{**asdict(live_elsewhere), "heartbeat": now - 301}), me, 300, now) == \
        "its heartbeat is 301 s old (stale after 300 s)"
    dead_here = Holder(host="a", pid=999_999, job=None, token="x", started=0.0, heartbeat=now)
    assert takeover_reason(dead_here, me, 300, now) == "its process 999999 on a no longer exists"
    live_here = Holder(host="a", pid=os.getppid(), job=None, token="x", started=0.0, heartbeat=now)
    assert takeover_reason(live_here, me, 300, now) is None
    requeued = Holder(host="b", pid=1, job="41_3", token="x", started=0.0, heartbeat=now)
    assert takeover_reason(requeued, Holder(**{**asdict(me), "job": "41_3"}), 300, now) == \
        "the same job 41_3 (requeued)"
    assert takeover_reason(requeued, Holder(**{**asdict(me), "job": "41_4"}), 300, now) is None


def test_a_stale_dead_or_requeued_holder_is_taken_over_a_live_one_is_not(tmp_path, monkeypatch):
    _plant(tmp_path / "live", heartbeat=time.time() - 10)
    with pytest.raises(LeaseHeld, match="pid 999999 on node17, last heartbeat 10 s ago"):
        Lease(tmp_path / "live").acquire()
    assert read_holder(tmp_path / "live" / LEASE).token == "othertoken"  # untouched

    _plant(tmp_path / "stale", heartbeat=time.time() - 400)
    with Lease(tmp_path / "stale") as lease:
        assert lease.took_over == "its heartbeat is 400 s old (stale after 300 s)"
        assert read_holder(tmp_path / "stale" / LEASE).token == lease.me.token

    _plant(tmp_path / "dead", host=socket.gethostname(), pid=999_999)
    with Lease(tmp_path / "dead") as lease:
        assert lease.took_over == f"its process 999999 on {socket.gethostname()} no longer exists"

    _plant(tmp_path / "requeued", job="41_3")
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "41")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    with Lease(tmp_path / "requeued") as lease:
        assert lease.took_over == "the same job 41_3 (requeued)"
    assert sorted(p.name for p in (tmp_path / "requeued").iterdir()) == []  # markers and lease cleaned up


def test_a_holder_that_was_taken_over_stops_writing(tmp_path):
    run = tmp_path / "run"
    old = Lease(run, heartbeat_every=3600).acquire()
    _plant(run, token="newcomer")  # what a takeover leaves: another writer's lease
    assert old.heartbeat() is False and old.lost
    with pytest.raises(ConfigError, match="was taken over by another writer .pid 999999 on node17"):
        old.check()
    old.release()
    assert read_holder(run / LEASE).token == "newcomer"  # release never removes another writer's lease


def test_the_heartbeat_thread_refreshes_the_lease(tmp_path):
    with Lease(tmp_path / "run", heartbeat_every=0.05):
        first = read_holder(tmp_path / "run" / LEASE).heartbeat
        time.sleep(0.3)
        assert read_holder(tmp_path / "run" / LEASE).heartbeat > first


TAKER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from nasbench_pc.runtime.lease import Lease, LeaseHeld
    run, me = Path(sys.argv[1]), sys.argv[2]
    (run.parent / f"ready-{run.name}-{me}").touch()
    while not (run.parent / f"go-{run.name}").exists():  # all takers start at once
        pass
    try:
        lease = Lease(run, heartbeat_every=3600).acquire()
    except LeaseHeld:
        print("held")
    else:
        print("won")
        time.sleep(3.0)  # hold it while the others look
        lease.release()
""")


def test_of_several_processes_taking_over_one_stale_lease_exactly_one_wins(tmp_path):
    for attempt in range(3):
        run = tmp_path / f"run{attempt}"
        _plant(run, heartbeat=time.time() - 1000)
        procs = [subprocess.Popen([sys.executable, "-c", TAKER, str(run), str(i)], stdout=subprocess.PIPE,
                                  text=True) for i in range(4)]
        deadline = time.time() + 120
        while len(list(tmp_path.glob(f"ready-{run.name}-*"))) < 4 and time.time() < deadline:
            time.sleep(0.01)
        (tmp_path / f"go-{run.name}").touch()
        outcomes = sorted(p.communicate(timeout=60)[0].strip() for p in procs)
        assert outcomes == ["held", "held", "held", "won"], outcomes
