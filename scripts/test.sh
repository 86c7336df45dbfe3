#!/usr/bin/env bash
# The test command (README): the whole suite, with the environment Ray and MLflow need here.
set -euo pipefail
cd "$(dirname "$0")/.."
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 \
       RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S=0 MLFLOW_DISABLE_TELEMETRY=true \
       MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false
exec .venv/bin/python -m pytest -q "$@"
