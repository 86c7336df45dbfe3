"""``fk.notify.webhook`` and ``flowkit run --notify/--callback``, against a real HTTP receiver.

The receiver (``core_fixtures/webhook.py``) listens on 127.0.0.1 and can fail, then succeed, or
hang. A dead or hanging endpoint must neither fail the run nor hold it past the webhook's
bounded wait; these tests check outcomes (delivered once, run succeeded, a warning), not times.
"""

from __future__ import annotations

import base64
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest
from core_fixtures.webhook import closed_port_url, receiver

import flowkit as fk
from flowkit.cli import main
from flowkit.notify import NotifyError, webhook
from flowkit.secret import Secret


@fk.task
def ok_task(n: int) -> int:
    return n + 1


@fk.workflow
def ok_flow(n: int = 1) -> int:
    return ok_task(n)


@fk.task
def boom(n: int) -> int:
    raise ValueError(f"boom {n}")


@fk.workflow
def boom_flow(n: int = 7) -> int:
    return boom(n)


@fk.task
def use_token(token: Secret) -> int:
    raise PermissionError(f"the server refused token {token.reveal()}")


@fk.workflow
def token_flow(token: Secret) -> int:
    return use_token(token)


def _fast(url: str | Secret, **kw: Any) -> fk.notify.Webhook:
    kw.setdefault("backoff", 0.01)
    return webhook(url, **kw)


def test_a_failed_run_posts_its_facts(tmp_path: Path) -> None:
    with receiver() as r:
        with pytest.raises(fk.TaskFailedError):
            fk.run(boom_flow, store=str(tmp_path / "s"), callbacks=[_fast(r.url)], tags={"t": "1"})
        (body,) = r.wait_for(1)
    facts = body["flowkit"]
    assert facts["event"] == facts["status"] == "failed"
    assert facts["workflow"] == "boom_flow" and facts["tags"] == {"t": "1"}
    assert "boom 7" in facts["error"] and isinstance(facts["duration"], float)
    text = body["text"]
    assert facts["run_id"] in text and "`boom_flow` failed" in text and "boom 7" in text
    assert "t=1" in text
    assert r.tries == 1


@fk.task
def shouty(n: int) -> int:
    raise ValueError("expected <int> & got <!channel>")


@fk.workflow
def shouty_flow(n: int = 1) -> int:
    return shouty(n)


def test_the_default_text_is_escaped_for_slack(tmp_path: Path) -> None:
    with receiver() as r:
        with pytest.raises(fk.TaskFailedError):
            fk.run(shouty_flow, store=str(tmp_path / "s"), callbacks=[_fast(r.url)])
        (body,) = r.wait_for(1)
    assert "expected &lt;int&gt; &amp; got &lt;!channel&gt;" in body["text"]
    assert "<!channel>" not in body["text"]
    assert "expected <int> & got <!channel>" in body["flowkit"]["error"]  # the data as it is


def test_only_the_asked_events_are_sent(tmp_path: Path) -> None:
    store = str(tmp_path / "s")
    with receiver() as r:
        fk.run(ok_flow, store=store, callbacks=[_fast(r.url)])  # default: failed only
        assert r.tries == 0
        run = fk.run(ok_flow, store=store, callbacks=[_fast(r.url, on=("started", "succeeded"))])
        bodies = r.wait_for(2)
    assert sorted(b["flowkit"]["event"] for b in bodies) == ["started", "succeeded"]
    assert {b["flowkit"]["run_id"] for b in bodies} == {run.id}
    assert "started" in next(b["text"] for b in bodies if b["flowkit"]["event"] == "started")


def test_a_server_that_fails_twice_gets_the_message_once(tmp_path: Path) -> None:
    with receiver([500, 503, 200]) as r:
        run = fk.run(ok_flow, store=str(tmp_path / "s"), callbacks=[_fast(r.url, on="succeeded")])
        bodies = r.wait_for(1)
    assert run.status == "succeeded"
    assert len(bodies) == 1 and r.tries == 3


def test_a_malformed_answer_is_retried(tmp_path: Path) -> None:
    with receiver(["garbage", 200]) as r:
        run = fk.run(ok_flow, store=str(tmp_path / "s"), callbacks=[_fast(r.url, on="succeeded")])
        bodies = r.wait_for(1)
    assert run.status == "succeeded" and len(bodies) == 1 and r.tries == 2


def test_a_client_error_is_not_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with receiver([404]) as r:
        with caplog.at_level(logging.WARNING, logger="flowkit.notify"):
            run = fk.run(
                ok_flow, store=str(tmp_path / "s"), callbacks=[_fast(r.url, on="succeeded")]
            )
    assert run.status == "succeeded" and r.tries == 1
    assert "HTTP 404" in caplog.text and "127.0.0.1" in caplog.text
    assert "/hook" not in caplog.text  # the URL's path may be a credential: only the host


def test_a_closed_port_does_not_fail_the_run(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hook = _fast(closed_port_url(), on=("started", "failed", "succeeded"), retries=2)
    with caplog.at_level(logging.WARNING, logger="flowkit.notify"):
        run = fk.run(ok_flow, n=4, store=str(tmp_path / "s"), callbacks=[hook])
    assert run.status == "succeeded" and run.output == 5
    assert "could not deliver the succeeded notification" in caplog.text


def test_a_hanging_server_costs_at_most_the_bounded_wait(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with receiver(["hang"]) as r:
        hook = _fast(r.url, on="failed", timeout=30, retries=0, wait=0.2)
        with caplog.at_level(logging.WARNING, logger="flowkit.notify"):
            with pytest.raises(fk.TaskFailedError):
                fk.run(boom_flow, store=str(tmp_path / "s"), callbacks=[hook])
        assert r.tries == 1  # it was sent, and the run returned while the server still hangs
        assert not hook.flush(0)
    assert "not delivered within" in caplog.text


def test_a_secret_in_the_error_never_reaches_the_payload(tmp_path: Path) -> None:
    value = f"tok-{uuid.uuid4().hex}"
    with receiver() as r:
        # a template that tries to send the secret on its own
        leaky = _fast(r.url, template=lambda run: {"text": run.error, "leak": value})
        with pytest.raises(fk.TaskFailedError):
            fk.run(
                token_flow,
                token=Secret(value),
                store=str(tmp_path / "s"),
                callbacks=[_fast(r.url), leaky],
            )
        bodies = r.wait_for(2)
        raw = b"".join(r.raw)
    assert len(bodies) == 2
    assert any("the server refused token ***" in b["text"] for b in bodies)
    for form in _forms(value):
        assert form not in raw


def test_a_secret_with_markup_characters_is_masked_before_escaping(tmp_path: Path) -> None:
    value = f"<&>{uuid.uuid4().hex}"
    with receiver() as r:
        with pytest.raises(fk.TaskFailedError):
            fk.run(
                token_flow, token=Secret(value), store=str(tmp_path / "s"), callbacks=[_fast(r.url)]
            )
        (body,) = r.wait_for(1)
        raw = b"".join(r.raw)
    assert "the server refused token ***" in body["text"]
    escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    for form in [*_forms(value), escaped.encode()]:
        assert form not in raw


def _forms(value: str) -> list[bytes]:
    data = value.encode()
    return [data, data.hex().encode(), base64.b64encode(data), base64.urlsafe_b64encode(data)]


def test_a_str_template_and_a_secret_url(tmp_path: Path) -> None:
    with receiver() as r:
        hook = _fast(Secret(r.url), on="succeeded", template="{workflow} {status} {tags} {error}")
        assert "/hook" not in repr(hook)
        fk.run(ok_flow, store=str(tmp_path / "s"), callbacks=[hook], tags={"a": "b"})
        (body,) = r.wait_for(1)
    assert body == {"text": "ok_flow succeeded a=b "}


def test_a_template_that_raises_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(run: fk.Run) -> dict[str, Any]:
        raise RuntimeError("template bug")

    with caplog.at_level(logging.WARNING, logger="flowkit.notify"):
        run = fk.run(
            ok_flow,
            store=str(tmp_path / "s"),
            callbacks=[_fast("http://127.0.0.1:1/", on="succeeded", template=broken)],
        )
    assert run.status == "succeeded" and "template bug" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"url": "ftp://host/secret-path"}, r"http:// or https://"),
        ({"url": "not a url"}, r"http:// or https://"),
        ({"on": ("failed", "finished")}, r"on=.*started, succeeded, failed, interrupted"),
        ({"on": ()}, r"give one or more of"),
        ({"template": "{workflw}"}, r"cannot be formatted.*\{workflow\}"),
        ({"template": 3}, r"str.format text or a callable"),
        ({"retries": -1}, r"retries=-1"),
        ({"timeout": "5"}, r"timeout='5'"),
    ],
)
def test_bad_settings_are_refused_when_built(kwargs: dict[str, Any], match: str) -> None:
    kwargs = {"url": "http://127.0.0.1:9/x", **kwargs}
    with pytest.raises(NotifyError, match=match) as info:
        webhook(**kwargs)
    assert "secret-path" not in str(info.value)


# -- the command line ---------------------------------------------------------------------------

FLOW = """
import flowkit as fk

@fk.task
def step(n: int) -> int:
    if n < 0:
        raise ValueError("negative")
    return n * 2

@fk.workflow
def wf(n: int = 1) -> int:
    return step(n)
"""

CALLBACKS = """
import flowkit as fk

class Recorder(fk.Callback):
    def __init__(self, path):
        self.path = path

    def on_run_end(self, run):
        with open(self.path, "a") as f:
            f.write(f"{run.id} {run.status}\\n")

def make():
    return Recorder("events.txt")

not_a_callback = 3

def wrong():
    return "a str"
"""


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flow.py").write_text(FLOW)
    (tmp_path / "mycallbacks.py").write_text(CALLBACKS)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_notify_posts_on_the_events_asked(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with receiver() as r:
        assert main(["run", "flow.py", "--store", "s", "--notify", r.url, "--n", "-1"]) == 1
        monkeypatch.setenv("FK_HOOK_URL", r.url)
        argv = ["run", "flow.py", "--store", "s", "--notify", "env:FK_HOOK_URL"]
        assert main([*argv, "--notify-on", "succeeded,failed", "--n", "3"]) == 0
        bodies = r.wait_for(2)
    assert [b["flowkit"]["status"] for b in bodies] == ["failed", "succeeded"]
    assert "negative" in bodies[0]["text"]
    assert capsys.readouterr().out.strip().endswith("6")


def test_cli_notify_refuses_a_bad_url_or_event(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "flow.py", "--store", "s", "--notify", "hooks.example/x"]) == 2
    assert "--notify: fk.notify.webhook: the URL must start with http" in capsys.readouterr().err
    argv = ["run", "flow.py", "--store", "s", "--notify", "http://127.0.0.1:9/", "--notify-on"]
    assert main([*argv, "done"]) == 2
    assert "give one or more of started, succeeded" in capsys.readouterr().err
    assert main(["run", "flow.py", "--store", "s", "--notify", "env:FK_SURELY_UNSET_HOOK"]) == 2
    assert "FK_SURELY_UNSET_HOOK is not set" in capsys.readouterr().err


def test_cli_callback_attaches_what_the_factory_returns(work: Path) -> None:
    assert main(["run", "flow.py", "--store", "s", "--callback", "mycallbacks:make"]) == 0
    assert main(["run", "flow.py", "--store", "s", "--callback", "mycallbacks:make"]) == 0
    lines = (work / "events.txt").read_text().splitlines()
    assert len(lines) == 2 and all(line.endswith(" succeeded") for line in lines)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mycallbacks", "give MODULE:FACTORY"),
        ("no_such_module_xyz:make", "cannot import module `no_such_module_xyz`"),
        ("mycallbacks:nope", "module `mycallbacks` has no attribute `nope`"),
        ("mycallbacks:not_a_callback", "`not_a_callback` is not callable"),
        ("mycallbacks:wrong", "wrong() returned a str, not an fk.Callback"),
    ],
)
def test_cli_callback_errors_name_the_fix(
    work: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    assert main(["run", "flow.py", "--store", "s", "--callback", spec]) == 2
    err = capsys.readouterr().err
    assert f"--callback {spec}" in err and message in err
    assert not (work / "s" / "runs").exists() or not list((work / "s" / "runs").iterdir())


def test_cli_callback_takes_the_mlflow_tracker_class() -> None:
    from flowkit.cli.attach import factories
    from flowkit.ml import MLflowTracker

    (tracker,) = factories(["flowkit.ml:MLflowTracker"])
    assert isinstance(tracker, MLflowTracker)


@fk.task
def stop_here(n: int) -> int:
    raise KeyboardInterrupt  # what Ctrl-C raises in the driver's thread on the local backend


@fk.workflow
def interrupted_flow(n: int = 1) -> int:
    return stop_here(n)


def test_an_interrupted_run_is_notified(tmp_path: Path) -> None:
    with receiver() as r:
        with pytest.raises(KeyboardInterrupt):
            fk.run(
                interrupted_flow,
                store=str(tmp_path / "s"),
                callbacks=[_fast(r.url, on=("interrupted", "failed"))],
            )
        (body,) = r.wait_for(1)
    assert body["flowkit"]["event"] == body["flowkit"]["status"] == "interrupted"
    assert "interrupted after" in body["text"]
