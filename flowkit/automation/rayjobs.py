"""A Ray cluster's job server (the dashboard's Jobs API), as ``flowkit submit`` talks to it.

Ray's ``JobSubmissionClient`` waits without a time limit on an address that accepts the
connection and never answers, and reports a wrong address as a bare ``ConnectionError``. So
every use first asks ``GET /api/version`` with a deadline (:func:`check`): nothing there, a
silent listener, or a server that is not a Ray dashboard is a :class:`RayJobError` naming the
address and the fix. Ray is imported only here and only when used: flowkit without the
``ray`` extra says what to install.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from flowkit.errors import FlowkitError

#: Seconds to wait for the job server's answer.
TIMEOUT = 10.0
#: Ray job statuses after which nothing more happens.
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
_FIX = (
    "give the address of the head's dashboard, http://HEAD:8265 (`ray start --head "
    "--dashboard-host 0.0.0.0` serves it to other machines; the GCS port 6379 is not it)"
)


class RayJobError(FlowkitError):
    """The job server cannot be reached, is not one, or refused a request."""


@dataclass(frozen=True)
class JobState:
    """What Ray says of a job: ``status`` (PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED) and
    its ``message`` (for a failed entrypoint: its exit code and the end of its logs)."""

    status: str
    message: str

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


def dashboard_url(address: str) -> str:
    """``http://HOST:PORT`` for ``address`` (``HOST:PORT`` gets ``http://``); RayJobError for
    other schemes (``ray://`` is Ray Client's, not the job server's)."""
    text = address.strip()
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", text) is None:
        text = "http://" + text
    text = text.rstrip("/")
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RayJobError(f"--address {address!r} is not a job server's address: {_FIX}")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise RayJobError(f"--address {address!r} has a bad port: {_FIX}") from None
    return text


def host_of(address: str) -> str:
    """The host name or IP of a job server's address."""
    return urllib.parse.urlsplit(dashboard_url(address)).hostname or ""


def check(address: str, *, timeout: float = TIMEOUT) -> str:
    """The job server's URL, once it has answered like a Ray dashboard (else RayJobError)."""
    url = dashboard_url(address)
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=timeout) as answer:
            body = json.loads(answer.read(65536))
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the answer's connection
        raise RayJobError(
            f"{url} answered HTTP {exc.code} to /api/version: not a Ray job server; {_FIX}"
        ) from None
    except http.client.HTTPException as exc:  # an HTTP/2 (gRPC) port, another protocol
        raise RayJobError(
            f"{url} does not answer HTTP like a Ray job server ({type(exc).__name__}); {_FIX}"
        ) from None
    except (OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise RayJobError(
            f"no Ray job server answers at {url} within {timeout:g} s ({reason}); {_FIX}"
        ) from None
    except ValueError:
        raise RayJobError(
            f"{url} answered /api/version with no JSON: not a Ray job server"
        ) from None
    if not isinstance(body, dict) or "ray_version" not in body:
        raise RayJobError(
            f"{url} answered /api/version without a ray_version: not a Ray job server"
        )
    return url


def client(address: str) -> Any:
    """A ``JobSubmissionClient`` for the job server at ``address`` (checked first)."""
    url = check(address)
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError as exc:
        raise RayJobError(
            f"submitting to Ray needs Ray's job client ({exc}): pip install 'flowkit[ray]'"
        ) from None
    try:
        return JobSubmissionClient(url)
    except (ConnectionError, RuntimeError) as exc:
        raise RayJobError(f"the Ray job server at {url}: {exc}") from None


def state(address: str, job_id: str) -> JobState:
    """Ray's status and message of job ``job_id`` (RayJobError if unknown or unreachable)."""
    jobs = client(address)
    try:
        info = jobs.get_job_info(job_id)
    except RuntimeError as exc:  # the SDK's "Request failed with status code 404: ..."
        raise RayJobError(f"Ray job {job_id} at {address}: {exc}") from None
    status = getattr(info.status, "value", info.status)
    return JobState(status=str(status), message=str(info.message or ""))


def logs(address: str, job_id: str) -> str:
    """What job ``job_id``'s entrypoint printed so far."""
    jobs = client(address)
    try:
        return str(jobs.get_job_logs(job_id))
    except RuntimeError as exc:
        raise RayJobError(f"Ray job {job_id} at {address}: {exc}") from None


__all__ = ["TERMINAL", "JobState", "RayJobError", "check", "client", "dashboard_url", "logs"]
