"""Shared fixtures: stores on a local folder, ``memory://`` and a real S3 server on loopback.

The S3 server is moto's ``ThreadedMotoServer`` bound to 127.0.0.1 on a free port, started
once per session and stopped at the end. s3fs talks to it with explicit key/secret and
``endpoint_url`` (no ``region_name``: moto then refuses bucket creation).

Markers are applied here, not in the test files (see CONTRIBUTING.md):

* ``services`` -- the test uses a real service: the S3 server (through a fixture, or a store
  kind parameter such as ``any_store[s3]``), an MLflow server, a Ray cluster (every test under
  ``backends/ray/tests``, marked by that folder's conftest);
* ``slow`` -- the test takes a second or more on its own (``SLOW_FILES``, ``SLOW_TESTS``).

``bash scripts/test.sh -m "not services and not slow"`` is the inner-loop suite.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flowkit.store import Store

S3_CREDENTIALS = {"username": "flowkit-test", "secret": "flowkit-test"}

# Fixtures that start (or use) a real service; a test that needs one, even indirectly, is
# marked ``services``.
SERVICE_FIXTURES = frozenset({"s3_endpoint", "s3_stores", "mlflow_server", "ray_cluster"})

# Parameter values that pick the S3 store in the store-kind parametrisations (they reach the
# server through ``request.getfixturevalue``, which the fixture names do not show).
S3_PARAMS = frozenset({"s3", "s3-store"})

# Tests that start a service themselves (node ids without parameters).
SERVICE_TESTS = frozenset(
    {
        "tests/test_benchmarks_smoke.py::test_w5_flowkit_on_local_ray",
        # a local HTTP server that is not a Ray job server
        "tests/test_raysubmit.py::test_a_server_that_is_not_rays_is_named",
        "tests/test_raysubmit.py::test_a_job_server_answering_its_version_passes",
    }
)

# Files whose tests each start fresh interpreters (end to end through fk.run and the CLI).
SLOW_FILES = frozenset(
    {
        "tests/ml/test_examples.py",
        "tests/ml/test_registry.py",  # real MLflow stores (sqlite): MLflow's import, migrations
        "tests/ml/test_tracking.py",
        "tests/test_benchmarks_smoke.py",
        "tests/test_caching_e2e.py",
        "tests/test_trust_cache.py",
        "tests/test_typecheck_mypy.py",  # one in-process mypy run over ~9,300 pairs
        "tests/test_fields_mypy.py",  # one in-process mypy run over 400 field paths
        "tests/ui/test_models.py",  # a real MLflow registry (sqlite): MLflow's import
        "tests/ml/test_lineage.py",  # a real MLflow registry (sqlite)
        "tests/automation/test_triggers_alias.py",  # a real MLflow registry (sqlite)
    }
)

# Tests (node ids without parameters) that take a second or more on their own without a
# service: fresh interpreters, multi-process races, property tests with many examples.
SLOW_TESTS = frozenset(
    {
        "tests/test_fields.py::test_cached_field_reads_match_a_fresh_uncached_run",
        "tests/test_cond.py::test_the_flyte_conditional_example_runs_as_a_script",
        "tests/test_cache.py::test_three_processes_recording_the_same_keys_all_succeed",
        "tests/test_raysubmit.py::test_the_shipment_leaves_out_stores_envs_and_large_files",
        "tests/test_runs_follow.py::test_follow_prints_calls_as_they_finish_and_stops_with_the_run",
        "tests/test_secret_leaks.py::test_a_secret_is_in_no_file_log_payload_or_page",
        "tests/test_codehash.py::test_same_digest_in_fresh_interpreters",
        "tests/test_codehash.py::test_same_digest_run_as_script_or_imported",
        "tests/test_codehash_objects.py::test_class_digest_follows_what_its_methods_do",
        "tests/test_engine.py::test_a_killed_run_leaves_the_records_of_finished_tasks",
        "tests/test_engine.py::test_waiting_for_a_long_call_does_not_spin",
        "tests/test_isolation.py::test_a_fresh_process_reads_the_right_sum",
        "tests/test_isolation.py::test_two_private_copies_are_independent",
        "tests/test_project.py::test_services_marker_follows_fixtures_and_store_kinds",
        "tests/test_project.py::test_quick_selection_leaves_out_services_and_slow_tests",
        "tests/test_isolation.py::test_mutating_the_private_copy_never_changes_the_original",
        "tests/test_serialize.py::test_script_classes_load_as_the_reading_process_class",
        "tests/test_store.py::test_three_processes_writing_the_same_objects_all_succeed",
        "tests/test_store.py::test_unreachable_s3_endpoint_names_the_url",
        "tests/test_store_faults.py::test_a_silent_s3_endpoint_fails_with_a_named_transient_fault",
        "tests/test_store_faults.py::test_an_unreachable_endpoint_is_transient",
        "tests/test_value_properties.py::test_bytes_are_equal_exactly_when_values_are_identical",
        "tests/test_runs_api.py::test_a_100k_item_run_loads_no_output",
        "tests/test_cli_runs.py::test_the_console_script_in_fresh_processes",
        "tests/test_resume.py::test_resumed_output_equals_a_fresh_run",
        "tests/test_resume.py::test_an_interrupted_run_resumed_in_a_new_process",
        "tests/test_secret.py::test_frames_and_object_arrays_holding_a_secret_are_refused",
        "tests/ui/test_app_cli.py::test_a_real_server_answers_over_http",
        "tests/ml/test_predictions.py::test_batch_predict_maps_over_partitions_in_a_workflow",
        "tests/ml/test_predictions.py::test_batch_predict_by_version_outside_a_workflow",
        "tests/ml/test_predictions.py::test_batch_predict_refuses_bad_input_before_loading",
        "tests/serve/test_predlog.py::test_record_never_waits_for_a_slow_store",
        "tests/serve/test_predlog.py::test_concurrent_requests_lose_nothing",
        "tests/automation/test_schedule_cli.py::test_a_killed_scheduler_process_is_taken_over",
        "tests/automation/test_schedule_cli.py::test_sigterm_stops_the_loop_and_releases_the_lease",
        "tests/automation/test_schedule_cli.py::"
        "test_fires_across_the_spring_change_are_runs_that_get_their_fire_time",
        "tests/automation/test_scheduler_tick.py::"
        "test_two_racing_schedulers_start_each_fire_exactly_once",
        "tests/automation/test_scheduler_tick.py::"
        "test_any_sequence_of_ticks_fires_cron_times_once_in_order",
        "tests/automation/test_schedules.py::"
        "test_a_planted_document_is_read_or_refused_with_a_named_field",
        "tests/automation/test_store_conditional.py::test_processes_racing_to_create_and_swap_agree",
        "tests/automation/test_store_conditional.py::test_conditional_writes_follow_a_model",
        "tests/automation/test_lease.py::test_two_processes_racing_for_50_rounds_never_both_hold_it",
        "tests/automation/test_lease.py::test_a_killed_holder_is_taken_over_once_its_term_runs_out",
        "tests/automation/test_lease.py::test_no_interleaving_gives_two_holders",
        "tests/automation/test_triggers_cli.py::test_a_fire_runs_the_workflow_with_its_event",
        "tests/automation/test_triggers_cli.py::test_two_processes_racing_fire_each_run_once",
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        test_id = item.nodeid.split("[", 1)[0]  # node ids are relative to the repository
        if test_id in SERVICE_TESTS or uses_a_service(item):
            item.add_marker(pytest.mark.services)
        if test_id in SLOW_TESTS or test_id.split("::", 1)[0] in SLOW_FILES:
            item.add_marker(pytest.mark.slow)


def uses_a_service(item: pytest.Item) -> bool:
    """Whether the test needs a real service (see the module docstring)."""
    fixtures: Iterable[str] = getattr(item, "fixturenames", ())
    if SERVICE_FIXTURES.intersection(fixtures):
        return True
    callspec = getattr(item, "callspec", None)
    params = callspec.params.values() if callspec is not None else ()
    return any(isinstance(value, str) and value in S3_PARAMS for value in params)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """URL of a moto S3 server on 127.0.0.1 (one per test session)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class S3Stores:
    """Makes buckets and stores on the session's S3 server."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.options: dict[str, Any] = {**S3_CREDENTIALS, "endpoint_url": endpoint}

    def bucket(self) -> str:
        """Create a fresh bucket and return its name."""
        import s3fs

        fs = s3fs.S3FileSystem(
            **S3_CREDENTIALS,
            client_kwargs={"endpoint_url": self.endpoint},
            skip_instance_cache=True,
        )
        name = f"fk-{uuid.uuid4().hex[:12]}"
        fs.mkdir(name)
        return name

    def new(self) -> Store:
        """A new, checked store under a fresh bucket."""
        store = Store(f"s3://{self.bucket()}/prefix", **self.options)
        store.check()
        return store


@pytest.fixture(scope="session")
def s3_stores(s3_endpoint: str) -> S3Stores:
    """Factory of stores on the session's S3 server."""
    return S3Stores(s3_endpoint)


@pytest.fixture
def local_store(tmp_path: Path) -> Store:
    """A new, checked store in a temporary folder."""
    store = Store(tmp_path / "store")
    store.check()
    return store


@pytest.fixture(params=["local", "memory", "s3"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A new, checked store of each kind: local folder, ``memory://`` and S3 (moto)."""
    if request.param == "local":
        store = Store(tmp_path / "store")
    elif request.param == "memory":
        store = Store(f"memory://fk-{uuid.uuid4().hex[:12]}")
    else:
        store = request.getfixturevalue("s3_stores").new()
    store.check()
    yield store
    if request.param == "memory":
        import fsspec

        fs = fsspec.filesystem("memory")
        fs.rm("/" + store.url.split("://", 1)[1], recursive=True)


@pytest.fixture(autouse=True)
def _default_store_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A workflow called directly uses the default store: keep it out of the working tree
    (tests that check the default itself unset the variable)."""
    monkeypatch.setenv("FLOWKIT_STORE", str(tmp_path / "default-store"))
