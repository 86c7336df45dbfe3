"""``fk.notify``: tell a chat channel or any HTTP endpoint how a run went.

``fk.notify.webhook(url)`` is a :class:`~flowkit.callbacks.Callback`: pass it to
``fk.run(callbacks=[...])``, or give ``--notify URL`` to ``flowkit run``. It POSTs one JSON
document per event it is asked for:

=================  ====================================================================
event              when
=================  ====================================================================
``"started"``      the run's header is written (its tasks have not started yet)
``"succeeded"``    the run ended with its output
``"failed"``       a task failed for good, or the run could not go on (the error says why)
``"interrupted"``  Ctrl-C or SIGTERM stopped the run
=================  ====================================================================

The default is ``on=("failed",)``: a notification is worth reading when something needs a
person. The default body is Slack-compatible (an incoming webhook posts its ``text``), with
the same facts as data under ``"flowkit"`` for other receivers; ``template=`` changes it.

Policy, because a notification observes a run and must never change it:

* **Delivery never fails or slows the run.** Each event is sent from a background thread,
  retried with exponential back-off on connection errors, timeouts, 429 and 5xx answers
  (``retries`` more tries), and given up with one logged warning. Nothing is raised into the
  run. At the end of the run, ``on_run_end`` waits for pending deliveries at most ``wait``
  seconds, so that a short script does not exit before its message is sent, and a dead or
  hanging endpoint costs at most that.
* **No secret leaves.** Every string of the body goes through :func:`flowkit.secret.mask`
  (a template's output too, and a callable template's whole dict). The URL itself is often a
  secret (a Slack webhook URL is a credential): it may be given as a :class:`~flowkit.secret.Secret`
  (or ``env:NAME`` / ``file:PATH`` on the command line), and warnings name its host only.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from flowkit.callbacks import Callback
from flowkit.records import Run
from flowkit.reprs import format_duration
from flowkit.secret import Secret, mask

log = logging.getLogger(__name__)

EVENTS: Final = ("started", "succeeded", "failed", "interrupted")
ERROR_CHARS: Final = 1000  # the error is cut to this many characters in the body

Template = str | Callable[[Run], Mapping[str, Any]]

# fields a str template may name (``{workflow}``, ``{status}`` ...)
FIELDS: Final = (
    "event",
    "workflow",
    "run_id",
    "status",
    "duration",
    "error",
    "tags",
    "host",
    "backend",
)


class NotifyError(ValueError):
    """A webhook was set up wrongly (a bad URL, event or template): raised when it is built."""


def webhook(
    url: str | Secret,
    on: str | Iterable[str] = ("failed",),
    template: Template | None = None,
    *,
    timeout: float = 5.0,
    retries: int = 3,
    backoff: float = 0.5,
    wait: float = 15.0,
) -> Webhook:
    """A callback that POSTs JSON to ``url`` on the events in ``on`` (see the module docstring).

    ``template``: a ``str.format`` text over :data:`FIELDS` (the body is ``{"text": ...}``), or
    a callable ``run -> dict`` giving the whole body. ``timeout``: seconds per try;
    ``retries``: tries after the first; ``backoff``: the first pause between tries (doubled
    each time); ``wait``: the most ``on_run_end`` waits for pending deliveries.
    """
    return Webhook(url, on, template, timeout=timeout, retries=retries, backoff=backoff, wait=wait)


class Webhook(Callback):
    """See :func:`webhook`."""

    def __init__(
        self,
        url: str | Secret,
        on: str | Iterable[str],
        template: Template | None,
        *,
        timeout: float,
        retries: int,
        backoff: float,
        wait: float,
    ) -> None:
        self._url = url
        self.host = _check_url(url.reveal() if isinstance(url, Secret) else url)
        self.events = _check_events(on)
        self.template = _check_template(template)
        for name, v in (("timeout", timeout), ("backoff", backoff), ("wait", wait)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or v < 0:
                raise NotifyError(f"fk.notify.webhook: {name}={v!r}: give seconds, >= 0")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise NotifyError(f"fk.notify.webhook: retries={retries!r}: give an integer >= 0")
        self.timeout = float(timeout) or 0.001
        self.retries = retries
        self.backoff = float(backoff)
        self.wait = float(wait)
        self._lock = threading.Lock()
        self._pending: list[threading.Thread] = []

    def __repr__(self) -> str:
        return f"fk.notify.webhook(<{self.host}>, on={self.events!r})"  # never the URL

    # -- the hooks ----------------------------------------------------------------------------

    def on_run_start(self, run: Run) -> None:
        if "started" in self.events:
            self._send("started", run)

    def on_run_end(self, run: Run) -> None:
        if run.status in self.events:
            self._send(run.status, run)
        self.flush(self.wait)

    def flush(self, timeout: float) -> bool:
        """Wait at most ``timeout`` seconds for pending deliveries; True if none is left."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = list(self._pending)
        for t in pending:
            t.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._pending = [t for t in self._pending if t.is_alive()]
            left = len(self._pending)
        if left:
            log.warning(
                "fk.notify: %d notification(s) to %s not delivered within %s; the run goes "
                "on without them",
                left,
                self.host,
                format_duration(timeout),
            )
        return not left

    # -- delivery -----------------------------------------------------------------------------

    def body(self, event: str, run: Run) -> dict[str, Any]:
        """The JSON body sent for ``event`` (masked)."""
        facts = _masked(run_facts(event, run))  # before escaping: "<" in a secret would hide it
        if self.template is None:
            body: Any = {"text": default_text(facts), "flowkit": facts}
        elif isinstance(self.template, str):
            body = {"text": self.template.format(**_text_fields(facts))}
        else:
            body = dict(self.template(run))
        masked = _masked(body)
        assert isinstance(masked, dict)
        return masked

    def _send(self, event: str, run: Run) -> None:
        try:
            data = json.dumps(self.body(event, run), default=str).encode("utf-8")
        except Exception as exc:  # a template's fault: say so, never raise into the run
            log.warning(
                "fk.notify: the %s notification for run %s has no body: %s",
                event,
                run.id,
                mask(f"{type(exc).__name__}: {exc}"),
            )
            return
        t = threading.Thread(
            target=self._deliver, args=(event, run.id, data), name="flowkit-notify", daemon=True
        )
        with self._lock:
            self._pending = [p for p in self._pending if p.is_alive()]
            self._pending.append(t)
        t.start()

    def _deliver(self, event: str, run_id: str, data: bytes) -> None:
        url = self._url.reveal() if isinstance(self._url, Secret) else self._url
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            retry, problem = self._post(url, data)
            if not problem or not retry:
                break
        if problem:
            log.warning(
                "fk.notify: could not deliver the %s notification of run %s to %s: %s",
                event,
                run_id,
                self.host,
                problem,
            )

    def _post(self, url: str, data: bytes) -> tuple[bool, str]:
        """One try: ``(worth retrying, problem)``; the problem is "" once delivered."""
        # imported when a notification is sent: urllib.request pulls in http, email, ssl
        # (20 ms at every `import flowkit`, and modules a user's file may be named like)
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                resp.read()
            return False, ""
        except urllib.error.HTTPError as exc:
            retry = exc.code == 429 or exc.code >= 500
            return retry, f"HTTP {exc.code} {mask(str(exc.reason))}"
        except Exception as exc:  # refused, reset, timed out, a malformed answer (HTTPException)
            reason = getattr(exc, "reason", exc)
            return True, mask(f"{type(exc).__name__}: {reason}")


# -- the body ---------------------------------------------------------------------------------


def run_facts(event: str, run: Run) -> dict[str, Any]:
    """What every notification says about a run (JSON-able; the error cut, not yet masked)."""
    error = run.error
    if error is not None and len(error) > ERROR_CHARS:
        error = error[: ERROR_CHARS - 3] + "..."
    return {
        "event": event,
        "workflow": run.workflow,
        "run_id": run.id,
        "status": run.status,
        "duration": run.duration,
        "error": error,
        "tags": dict(run.tags),
        "host": run.host,
        "backend": run.backend,
    }


def slack_escape(text: str) -> str:
    """``&``, ``<`` and ``>`` escaped as Slack's message text wants: an error quoting
    ``<int>`` stays readable, and one holding ``<!channel>`` notifies nobody."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def default_text(facts: Mapping[str, Any]) -> str:
    """``flowkit: run <id> of `wf` failed after 1.2s: ValueError: ... (schedule=nightly)``,
    with what came from the run (names, the error, tags) escaped for Slack."""
    return slack_escape(_plain_text(facts))


def _plain_text(facts: Mapping[str, Any]) -> str:
    head = f"flowkit: run {facts['run_id']} of `{facts['workflow']}`"
    if facts["event"] == "started":
        text = f"{head} started on {facts['backend'] or 'local'}"
    else:
        text = f"{head} {facts['status']} after {format_duration(facts['duration'])}"
    if facts["error"]:
        text += f": {facts['error']}"
    if facts["tags"]:
        text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(facts["tags"].items())) + ")"
    return text


def _text_fields(facts: Mapping[str, Any]) -> dict[str, Any]:
    """The facts as a str template sees them: the duration and tags as text, None as ""."""
    fields = dict(facts)
    fields["duration"] = format_duration(facts["duration"])
    fields["tags"] = ", ".join(f"{k}={v}" for k, v in sorted(facts["tags"].items()))
    fields["error"] = facts["error"] or ""
    return fields


def _masked(value: Any) -> Any:
    """``value`` with every string in it (dict keys too) masked."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, Mapping):
        return {_masked(str(k)): _masked(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_masked(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return mask(str(value))


# -- checks when built --------------------------------------------------------------------------


def _check_url(url: Any) -> str:
    """The URL's host for messages; NotifyError (never quoting the URL) if it is not http(s)."""
    if not isinstance(url, str):
        raise NotifyError(
            f"fk.notify.webhook: the URL must be a str or fk.Secret, not {type(url).__name__}"
        )
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotifyError(
            "fk.notify.webhook: the URL must start with http:// or https:// and name a host "
            "(it is not repeated here: webhook URLs are often secrets)"
        )
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _check_events(on: Any) -> tuple[str, ...]:
    events = (on,) if isinstance(on, str) else tuple(on)
    bad = [e for e in events if e not in EVENTS]
    if bad or not events:
        raise NotifyError(f"fk.notify.webhook: on={on!r}: give one or more of {', '.join(EVENTS)}")
    return events


def _check_template(template: Any) -> Template | None:
    if template is None or callable(template):
        return template  # type: ignore[no-any-return]
    if not isinstance(template, str):
        raise NotifyError(
            "fk.notify.webhook: template= is a str.format text or a callable run -> dict, "
            f"not {type(template).__name__}"
        )
    try:
        template.format(**{f: "" for f in FIELDS})
    except (KeyError, IndexError, ValueError) as exc:
        raise NotifyError(
            f"fk.notify.webhook: template={template!r} cannot be formatted ({exc!r}); "
            f"it may name {', '.join('{' + f + '}' for f in FIELDS)}"
        ) from None
    return template


__all__ = [
    "EVENTS",
    "FIELDS",
    "NotifyError",
    "Webhook",
    "default_text",
    "run_facts",
    "slack_escape",
    "webhook",
]
