"""worker/arq_adapter.py reaches into arq where arq has no hook; these fail when arq changes there.

`GraphworksWorker.finish_job` replaces arq's own (adding the runner's completion count to its
transaction), so it must do everything upstream's does. If arq's `finish_job` changes, this test
fails: read the new upstream method, bring the override in line, then record the new digest.
"""

from __future__ import annotations

import hashlib
import inspect
from importlib import metadata

import arq.worker

from worker.arq_adapter import GraphworksWorker

# sha256 of inspect.getsource(arq.worker.Worker.finish_job) in arq 0.28.0, which the override copies.
FINISH_JOB_SHA256 = "903f09c92830d3fd8044e19cc409074d9b62143218f73c3101a1ef5f724b22ce"


def test_arq_is_the_minor_version_the_adapter_was_written_against() -> None:
    assert metadata.version("arq").startswith("0.28."), "re-read worker/arq_adapter.py against this arq first"


def test_upstream_finish_job_is_the_one_the_override_copies() -> None:
    source = inspect.getsource(arq.worker.Worker.finish_job)
    assert hashlib.sha256(source.encode()).hexdigest() == FINISH_JOB_SHA256, (
        "arq's Worker.finish_job changed: compare it with GraphworksWorker.finish_job and update both"
    )


def test_the_override_takes_upstreams_arguments() -> None:
    ours = inspect.signature(GraphworksWorker.finish_job).parameters
    theirs = inspect.signature(arq.worker.Worker.finish_job).parameters
    assert list(ours) == list(theirs)


def test_arq_still_reads_the_in_progress_timeout_we_set() -> None:
    # The adapter sets in_progress_timeout_s after arq's constructor; arq must still use it when it
    # marks a job in progress, or a dead worker's jobs would wait arq's own default instead.
    assert "self.in_progress_timeout_s" in inspect.getsource(arq.worker.Worker.start_jobs)


def test_arqs_sigterm_handler_still_stops_taking_jobs_by_allow_pick_jobs() -> None:
    # finish_job tells a shutdown hand-back by allow_pick_jobs, which this handler clears.
    source = inspect.getsource(arq.worker.Worker.handle_sig_wait_for_completion)
    assert "self.allow_pick_jobs = False" in source
    assert "t.cancel()" in inspect.getsource(arq.worker.Worker._wait_for_tasks_to_complete)


def test_arqs_start_jobs_still_takes_its_slot_before_talking_to_redis() -> None:
    # _give_back_leaked_slot returns the slot start_jobs keeps when Redis fails mid-way.
    source = inspect.getsource(arq.worker.Worker.start_jobs)
    assert source.index("await self.sem.acquire()") < source.index("self.job_counter = self.job_counter + 1")
    assert source.index("self.job_counter = self.job_counter + 1") < source.index("await pipe.watch(")
    assert "self.sem.release()" in inspect.getsource(arq.worker.Worker._release_sem_dec_counter_on_complete)


def test_arq_still_keeps_a_running_jobs_function_task_in_job_tasks() -> None:
    # heartbeat() reports a lost lease only for jobs whose function is still running.
    source = inspect.getsource(arq.worker.Worker.run_job)
    assert "self.job_tasks[job_id] = task" in source
    assert "del self.job_tasks[job_id]" in source
