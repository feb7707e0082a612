"""A stand-in that fails stops the demo with its message and a non-zero exit, instead of dying unseen.

``devtools.devstack`` runs the stand-ins in threads under :class:`StandIns` and waits in
:func:`supervise` on Airflow's process. Here a real process (``sleep``) stands for ``airflow
standalone``: the failure must end the wait at once, say which stand-in failed and why, and leave the
caller to stop the process group.
"""
from __future__ import annotations

import subprocess
import time

from devtools.demo.retry import StandInError
from devtools.devstack import StandIns, stop_process_group, supervise


def start_airflow_stand_in() -> subprocess.Popen:
    return subprocess.Popen(["sleep", "120"], start_new_session=True)


def test_a_failing_stand_in_stops_the_demo_with_its_message(tmp_path, capsys):
    airflow = start_airflow_stand_in()
    stand_ins = StandIns()
    try:
        def participants():
            time.sleep(0.3)
            raise StandInError("triggering imageclef2025_agreement_approval (demo_approval__team-a__t1): still failing after 6 tries: HTTP 500")

        stand_ins.start("the stand-in participants and organizer", participants)
        started = time.monotonic()
        code = supervise(airflow, stand_ins, tmp_path / "airflow-standalone.log", poll_seconds=0.1)
        assert code == 2
        assert time.monotonic() - started < 5
        assert airflow.poll() is None, "supervise reports; the caller stops Airflow"
    finally:
        stop_process_group(airflow, grace_seconds=5)
    assert airflow.poll() is not None
    err = capsys.readouterr().err
    assert "demo stopped: the stand-in participants and organizer failed: triggering imageclef2025_agreement_approval" in err
    assert "still failing after 6 tries: HTTP 500" in err
    assert str(tmp_path / "airflow-standalone.log") in err
    assert "Traceback" in err, "the stand-in's traceback is printed too"


def test_an_unexpected_error_in_a_stand_in_stops_the_demo_too(tmp_path, capsys):
    airflow = start_airflow_stand_in()
    stand_ins = StandIns()
    try:
        stand_ins.start("the DAG-run watcher", lambda: {}["state"])
        assert supervise(airflow, stand_ins, tmp_path / "log", poll_seconds=0.1) == 2
    finally:
        stop_process_group(airflow, grace_seconds=5)
    assert "demo stopped: the DAG-run watcher failed: 'state'" in capsys.readouterr().err


def test_the_first_failure_is_the_one_reported(tmp_path, capsys):
    airflow = start_airflow_stand_in()
    stand_ins = StandIns()
    try:
        stand_ins.start("first", lambda: (_ for _ in ()).throw(RuntimeError("first reason")))
        time.sleep(0.2)
        stand_ins.start("second", lambda: (_ for _ in ()).throw(RuntimeError("second reason")))
        time.sleep(0.2)
        assert supervise(airflow, stand_ins, tmp_path / "log", poll_seconds=0.1) == 2
    finally:
        stop_process_group(airflow, grace_seconds=5)
    assert "demo stopped: first failed: first reason" in capsys.readouterr().err


def test_stand_ins_that_finish_leave_the_demo_running_until_airflow_exits(tmp_path, capsys):
    airflow = subprocess.Popen(["sh", "-c", "sleep 1; exit 3"], start_new_session=True)
    stand_ins = StandIns()
    stand_ins.start("the stand-in participants and organizer", lambda: None)
    assert supervise(airflow, stand_ins, tmp_path / "log", poll_seconds=0.1) == 3
    err = capsys.readouterr().err
    assert "airflow standalone exited with code 3" in err and "demo stopped" not in err


def test_only_a_folder_a_demo_made_is_wiped(tmp_path):
    from devtools.devstack import DEMO_DIR_MARKER, fresh_demo_dir

    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    try:
        fresh_demo_dir(foreign)
    except FileExistsError as exc:
        assert "not made by a demo" in str(exc)
    else:
        raise AssertionError("a foreign folder was accepted")
    assert (foreign / "thesis.tex").read_text() == "precious"

    demo = tmp_path / "demo"
    fresh_demo_dir(demo)
    (demo / "airflow").mkdir()
    fresh_demo_dir(demo)
    assert sorted(p.name for p in demo.iterdir()) == [DEMO_DIR_MARKER], "an earlier demo's folder starts empty again"


def test_the_stand_ins_wait_for_the_api_server_to_answer():
    from devtools.devstack import free_port, wait_for_api
    from tests.demo.flaky_api import FlakyAirflowApi

    started = time.monotonic()
    assert wait_for_api(f"http://127.0.0.1:{free_port()}", timeout=1.5) is False, "nobody listens"
    assert time.monotonic() - started < 10, "bounded"
    with FlakyAirflowApi() as server:
        assert wait_for_api(server.url, timeout=10) is True
