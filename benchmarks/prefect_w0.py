"""W0 peer: import prefect + two tasks (private PREFECT_HOME, no telemetry)."""

import os

os.environ.setdefault(
    "PREFECT_HOME", os.path.join(os.environ.get("BENCH_STATE", "/tmp/flowkit-bench"), "home")
)
os.makedirs(os.environ["PREFECT_HOME"], exist_ok=True)
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
from prefect import task  # noqa: E402


@task
def inc(x: int) -> int:
    return x + 1


@task
def square(x: int) -> int:
    return x * x
