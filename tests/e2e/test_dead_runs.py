"""A dead run worker no longer stalls the warehouse queue: the deployment's instance config, the real daemon.

The run worker holding the only `duckdb_warehouse` slot is SIGKILLed (as an OOM kill does) together with
its code server, the one process that notices a dead worker in stock Dagster (restarted at once, as a
supervisor would). Before the checking run launcher (gl_pipelines/run_launcher.py) the run stayed STARTED
and kept the slot forever; now the monitoring daemon fails it, frees the slot, the run that was waiting
starts its step and the run-failure alert is posted.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import PG, PG_PASSWORD, PG_USER, pg_connect
from tests.e2e.dead_runs import held_runs, kill_holder, wait_for

pytestmark = pytest.mark.e2e

RECOVERY_TIMEOUT_S = 180
"""Poll 15 s + slot freed 10 s after the failure + the next poll + the waiting step's slot poll, with room
for a loaded CI machine; a stalled queue never gets there."""


def test_killed_worker_is_failed_its_slot_freed_and_the_waiting_run_starts(tmp_path: Path, pg_database: str):
    pg_env = {
        "GL_PG_HOST": PG["host"],
        "GL_PG_PORT": str(PG["port"]),
        "GL_PG_USER": PG_USER,
        "GL_PG_PASSWORD": PG_PASSWORD,
        "GL_PG_DB": pg_database,
    }
    with held_runs(tmp_path, pg_database, pg_connect, pg_env) as held:
        recovery = kill_holder(held, code_server_too=True, timeout_s=RECOVERY_TIMEOUT_S)

        statuses = held.statuses()
        assert statuses[recovery.holder] == "FAILURE"
        assert statuses[recovery.waiter] == "STARTED"
        assert recovery.waiter_step_start > recovery.killed_at
        message = held.failure_message(recovery.holder)
        # Gone, or a zombie when nothing reaped it yet (the killed code server was its parent): both are dead.
        assert any(
            f"run worker process {recovery.holder_pid} {state}" in message
            for state in ("is gone (killed or crashed)", "has exited (zombie, not reaped)")
        ), message
        alert = wait_for(
            "the run-failure alert",
            lambda: next((b for b in held.receiver.bodies if b["run_id"] == recovery.holder), None),
            60,
            held,
        )
    assert alert["job"] == "holder_job"
    assert alert["assets"] == ["warehouse_holder"]
    assert f"run worker process {recovery.holder_pid} is gone (killed or crashed)" in alert["error"]
    assert [b["run_id"] for b in held.receiver.bodies] == [recovery.holder]
