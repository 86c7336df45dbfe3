"""``flowkit serve``'s app over real HTTP: the scoring protocol, bad bodies, health, metrics.

Each test starts the app under uvicorn on a loopback port (``serve`` in conftest.py) over a
real sqlite MLflow registry where version ``v`` of ``clf`` predicts ``v``.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from flowkit.serve.models import ServeConfig

pytestmark = pytest.mark.filterwarnings("error")


def split(n: int = 1) -> dict[str, Any]:
    """A valid ``dataframe_split`` body of ``n`` rows."""
    return {"dataframe_split": {"columns": ["a", "b"], "data": [[float(i), 1.0] for i in range(n)]}}


@pytest.fixture
def server(serve: Callable[..., Any], serve_registry: Any) -> Any:
    """Alias ``app_prod`` -> version 2, served pinned, with a 64 KiB body limit."""
    serve_registry.point("app_prod", 2)
    config = ServeConfig(
        "clf", "app_prod", serve_registry.uri, follow_seconds=None, max_body_bytes=64 * 1024
    )
    return serve(config)


GOOD_BODIES = {
    "dataframe_split": {"dataframe_split": {"columns": ["b", "a"], "data": [[1, 2], [0, 3.5]]}},
    "dataframe_split without columns": {"dataframe_split": {"data": [[1, 2], [0, 3.5]]}},
    "dataframe_records": {"dataframe_records": [{"a": 1, "b": 2}, {"b": 0, "a": 3.5}]},
    "instances as rows": {"instances": [[1, 2], [3.5, 0]]},
    "instances as records": {"instances": [{"a": 1, "b": 2}, {"a": 3.5, "b": 0}]},
    "inputs as columns": {"inputs": {"a": [1, 3.5], "b": [2, 0]}},
    "inputs as rows": {"inputs": [[1, 2], [3.5, 0]]},
}


@pytest.mark.parametrize("kind", list(GOOD_BODIES))
def test_every_format_of_the_protocol_is_scored(server: Any, kind: str) -> None:
    reply = server.score(GOOD_BODIES[kind])
    assert reply.status == 200, reply.body
    predictions = reply.json()["predictions"]
    assert [round(p, 6) for p in predictions] == [2.0, 2.0]
    assert reply.version == 2 and reply.headers["x-model-alias"] == "app_prod"
    assert len(reply.headers["x-request-id"]) == 32
    assert reply.headers["content-type"] == "application/json"


def test_csv_bodies_are_scored(server: Any) -> None:
    reply = server.score(b"b,a\n1,2\n0,3.5\n", "text/csv; charset=utf-8")
    assert reply.status == 200, reply.body
    assert [round(p, 6) for p in reply.json()["predictions"]] == [2.0, 2.0]


def test_health_and_version_name_the_loaded_version(server: Any, serve_registry: Any) -> None:
    health = server.get("/health")
    assert health.status == 200
    assert health.json() == {"status": "ok", "model": "clf", "alias": "app_prod", "version": 2}
    assert server.get("/ping").status == 200
    from mlflow import MlflowClient

    run_id = MlflowClient(serve_registry.uri).get_model_version("clf", "2").run_id
    doc = server.get("/version").json()
    assert doc == {"name": "clf", "version": 2, "alias": "app_prod", "run_id": run_id}


BAD_BODIES: dict[str, tuple[bytes, str, int, str]] = {
    # name: (body, content type, status, words the message must contain)
    "not json": (b"{'a': 1", "application/json", 400, "not valid JSON"),
    "not an object": (b"[1, 2]", "application/json", 400, "JSON object"),
    "unknown key": (b'{"rows": [[1, 2]]}', "application/json", 400, "unknown key(s) ['rows']"),
    "two formats": (
        b'{"instances": [[1, 2]], "inputs": [[1, 2]]}',
        "application/json",
        400,
        "exactly one of",
    ),
    "no format": (b"{}", "application/json", 400, "exactly one of"),
    "params": (b'{"instances": [[1, 2]], "params": {"k": 1}}', "application/json", 400, "params"),
    "missing column": (
        b'{"dataframe_records": [{"a": 1}]}',
        "application/json",
        400,
        "missing ['b']",
    ),
    "extra column": (
        b'{"dataframe_split": {"columns": ["a", "b", "c"], "data": [[1, 2, 3]]}}',
        "application/json",
        400,
        "unexpected ['c']",
    ),
    "renamed column": (
        b'{"inputs": {"a": [1], "x": [2]}}',
        "application/json",
        400,
        "missing ['b'], unexpected ['x']",
    ),
    "too few values": (b'{"instances": [[1]]}', "application/json", 400, "expects 2 (a, b)"),
    "too many positional": (b'{"instances": [[1, 2, 3]]}', "application/json", 400, "got 3"),
    "ragged rows": (
        b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2], [1]]}}',
        "application/json",
        400,
        "row 1 has 1 values, expected 2",
    ),
    "records with other keys": (
        b'{"dataframe_records": [{"a": 1, "b": 2}, {"a": 1, "c": 2}]}',
        "application/json",
        400,
        "record 1",
    ),
    "nested value": (
        b'{"dataframe_records": [{"a": [1, 2], "b": 2}]}',
        "application/json",
        400,
        "row 0, column 'a' holds a list",
    ),
    "text where a number goes": (
        b'{"dataframe_records": [{"a": "seven", "b": 2}]}',
        "application/json",
        400,
        "columns holding text: ['a']",
    ),
    "null value": (b'{"instances": [[null, 2]]}', "application/json", 400, "NaN"),
    "no rows": (b'{"instances": []}', "application/json", 400, "non-empty"),
    "duplicate columns": (
        b'{"dataframe_split": {"columns": ["a", "a"], "data": [[1, 2]]}}',
        "application/json",
        400,
        "duplicate column names ['a']",
    ),
    "columns not strings": (
        b'{"dataframe_split": {"columns": [1, 2], "data": [[1, 2]]}}',
        "application/json",
        400,
        "list of strings",
    ),
    "split without data": (
        b'{"dataframe_split": {"columns": ["a"]}}',
        "application/json",
        400,
        '"data"',
    ),
    "columns of different lengths": (
        b'{"inputs": {"a": [1, 2], "b": [1]}}',
        "application/json",
        400,
        "all of one length",
    ),
    "not csv": (b"\xff\xfe\x00", "text/csv", 400, "CSV"),
    "other content type": (b"a=1", "application/x-www-form-urlencoded", 415, "unsupported content"),
    "deeply nested": (
        b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}",
        "application/json",
        400,
        "depth",
    ),
    "infinite number": (b'{"instances": [[1e400, 2]]}', "application/json", 400, "infinity"),
    "NaN literal": (b'{"instances": [[NaN, 2]]}', "application/json", 400, "not valid JSON"),
    "bare string": (b'"instances"', "application/json", 400, "JSON object"),
    "empty body": (b"", "application/json", 400, "not valid JSON"),
    "not utf-8 json": (b'{"instances": [["\xff"]]}', "application/json", 400, "not valid JSON"),
}


@pytest.mark.parametrize("kind", list(BAD_BODIES))
def test_a_bad_body_is_a_4xx_naming_the_problem(server: Any, kind: str) -> None:
    body, content_type, status, words = BAD_BODIES[kind]
    reply = server.score(body, content_type)
    assert reply.status == status, reply.body
    doc = reply.json()
    assert words in doc["message"], doc
    assert doc["error_code"] in ("BAD_REQUEST", "UNSUPPORTED_MEDIA_TYPE")
    assert reply.version == 2  # the version that refused it
    after = server.score(split())
    assert after.status == 200 and after.version == 2  # and the server goes on serving


def test_a_body_declared_too_large_is_refused_before_it_is_read(server: Any) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n{"  # 100 MB declared, 1 byte sent
        )
        head = sock.recv(65536).decode()
    assert head.startswith("HTTP/1.1 413"), head
    assert "REQUEST_TOO_LARGE" in head and "limit of 65536 bytes" in head
    assert server.score(split()).status == 200


def test_a_streamed_body_is_cut_off_at_the_limit(server: Any) -> None:
    """A chunked body (no length) of 100 MB: refused once 64 KiB are read, without the rest."""
    chunk = b"[" + b"1," * 32767 + b"1]"  # 64 KiB of a JSON-looking payload
    sent = 0
    head = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        sock.settimeout(0.0)
        try:
            while sent < 100 * 2**20 and not head:
                try:
                    sent += sock.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                except BlockingIOError:
                    time.sleep(0.01)
                try:
                    head = sock.recv(65536)
                except BlockingIOError:
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert sent < 20 * 2**20, f"the server kept reading: {sent} bytes sent"
    if head:  # the answer came before the connection was dropped
        assert head.startswith(b"HTTP/1.1 413"), head[:200]
    assert server.score(split()).status == 200


def test_an_exact_limit_body_is_accepted_and_one_byte_more_is_not(server: Any) -> None:
    base = json.dumps(split(1)).encode()
    padded = base[:-1] + b" " * (64 * 1024 - len(base)) + b"}"
    assert len(padded) == 64 * 1024
    assert server.score(padded).status == 200
    assert server.score(padded + b" ").status == 413


def test_other_paths_and_methods_are_json_errors(server: Any) -> None:
    missing = server.get("/nowhere")
    assert missing.status == 404 and missing.json()["error_code"] == "NOT_FOUND"
    wrong = server.request("GET", "/invocations")
    assert wrong.status == 405 and wrong.json()["error_code"] == "METHOD_NOT_ALLOWED"


def test_metrics_count_requests_errors_and_latency_by_version(server: Any) -> None:
    for _ in range(3):
        assert server.score(split(2)).status == 200
    assert server.score(b"nope").status == 400
    reply = server.get("/metrics")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain")
    labels = {"model": "clf", "version": "2", "alias": "app_prod"}
    assert server.metric("flowkit_serve_requests_total", **labels) == 4
    assert server.metric("flowkit_serve_errors_total", **labels, status="400") == 1
    assert server.metric("flowkit_serve_errors_total", **labels) == 1
    assert server.metric("flowkit_serve_request_seconds_count", **labels) == 4
    assert server.metric("flowkit_serve_request_seconds_bucket", **labels, le="+Inf") == 4


class Failing:
    """A model that loads but cannot score batches."""

    def predict(self, frame: Any) -> Any:
        if len(frame) > 1:
            raise ZeroDivisionError("the model divides by zero on batches")
        return [7]


def test_a_model_that_fails_while_scoring_is_a_500_and_serving_goes_on(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    from flowkit import ml

    ml.register(Failing(), "clf_failing", serve_registry.uri, alias="app_failing")
    server = serve(
        ServeConfig("clf_failing", "app_failing", serve_registry.uri, follow_seconds=None)
    )
    reply = server.score(split(2))
    assert reply.status == 500 and "ZeroDivisionError" in reply.json()["message"]
    assert server.score(split(1)).json() == {"predictions": [7]}


def test_nothing_to_serve_is_a_503_that_says_why(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    server = serve(ServeConfig("clf", "app_unset", serve_registry.uri, follow_seconds=None))
    health = server.get("/health")
    assert health.status == 503
    doc = health.json()
    assert doc["status"] == "unavailable" and doc["version"] is None
    assert "app_unset" in doc["failure"]["error"] and doc["failure"]["version"] is None
    reply = server.score(split())
    assert reply.status == 503 and reply.json()["error_code"] == "MODEL_NOT_LOADED"
    assert server.get("/version").status == 503


def test_a_model_fitted_on_arrays_takes_named_or_positional_columns(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    import numpy as np
    from sklearn.linear_model import LinearRegression

    from flowkit import ml

    model = LinearRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0]]), [5.0] * 3)
    ml.register(model, "clf_arrays", serve_registry.uri, alias="app_arrays")
    server = serve(ServeConfig("clf_arrays", "app_arrays", serve_registry.uri, follow_seconds=None))
    for body in (split(2), {"instances": [[1, 2], [3, 4]]}):
        reply = server.score(body)
        assert reply.status == 200, reply.body
        assert [round(p) for p in reply.json()["predictions"]] == [5, 5]
    wide = server.score({"instances": [[1, 2, 3]]})
    assert wide.status == 400 and "expects 2" in wide.json()["message"]


def test_one_app_can_be_started_twice(serve_registry: Any) -> None:
    from starlette.testclient import TestClient

    from flowkit.serve.app import create_app

    serve_registry.point("app_twice", 3)
    app = create_app(ServeConfig("clf", "app_twice", serve_registry.uri, follow_seconds=0.5))
    for _ in range(2):
        with TestClient(app) as client:
            reply = client.post("/invocations", json=split(1))
            assert reply.status_code == 200 and reply.headers["x-model-version"] == "3"


def test_a_large_body_is_scored_while_health_answers(
    serve: Callable[..., Any], serve_registry: Any
) -> None:
    import threading

    serve_registry.point("app_large", 1)
    server = serve(ServeConfig("clf", "app_large", serve_registry.uri, follow_seconds=None))
    body = json.dumps(split(200_000)).encode()  # about 4 MB, under the 16 MiB default
    replies: list[Any] = []
    worker = threading.Thread(target=lambda: replies.append(server.score(body)))
    worker.start()
    while worker.is_alive():  # the event loop is free: parsing runs in a worker thread
        started = time.monotonic()
        assert server.get("/health").status == 200
        assert time.monotonic() - started < 5.0
        time.sleep(0.05)
    worker.join()
    assert replies[0].status == 200, replies[0].body[:300]
    predictions = replies[0].json()["predictions"]
    assert len(predictions) == 200_000 and round(predictions[-1]) == 1
