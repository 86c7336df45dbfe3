"""Issue 11 on Ray: a ``fk.Secret`` reaches a task on the second node (pickled for transport,
unpickled there, which registers it for masking in the worker), enters the cache key computed
on the worker as an HMAC only (under the key the store keeps: the worker reads it there), and
leaves no trace of its text in the store.

The driver is a fresh process connected to the two-node loopback cluster; the tasks ask for
the worker node's (fake) GPU.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

from raycluster import RayCluster, ray_env

FLOW = """
import json, sys
import flowkit as fk
from flowkit import secret
from flowkit.secret import Secret


@fk.task(cache=True, resources=fk.Resources(gpus=1))
def use(token: Secret, tokens: list[Secret], n: int) -> list[str]:
    import ray

    # masked here, on the worker: unpickling the arguments registered their values
    seen = secret.mask(f"token={token.reveal()} others={[t.reveal() for t in tokens]}")
    return [seen, ray.get_runtime_context().get_node_id()]


@fk.workflow
def flow(token: Secret, tokens: list[Secret], n: int = 1) -> list[str]:
    return use(token, tokens, n)


@fk.task(resources=fk.Resources(gpus=1))
def as_text(token: str) -> str:
    # a str parameter: the text, revealed on the worker after the key was derived
    return secret.mask(f"{type(token).__name__} {len(token)} {token}")


@fk.workflow
def text_flow(token: Secret) -> str:
    return as_text(token)


store, first, second, other = sys.argv[1:5]
a = fk.run(flow, token=Secret(first), tokens=[Secret(other)], store=store, backend="ray")
b = fk.run(flow, token=Secret(second), tokens=[Secret(other)], store=store, backend="ray")
c = fk.run(flow, token=Secret(first), tokens=[Secret(other)], store=store, backend="ray")
d = fk.run(text_flow, token=Secret(first), store=store, backend="ray")
print(json.dumps({
    "a": a.output, "b_cached": b.tasks[0].cached, "c_cached": c.tasks[0].cached, "d": d.output
}))
"""


def test_a_secret_travels_to_the_second_node_and_nowhere_else(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    first, second, other = (f"S3CR3T~{uuid.uuid4().hex}" for _ in range(3))
    script = tmp_path / "flow.py"
    script.write_text(textwrap.dedent(FLOW))
    store = tmp_path / "store"
    done = subprocess.run(
        [sys.executable, str(script), str(store), first, second, other],
        env={**ray_env(), "RAY_ADDRESS": ray_cluster.address},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr + ray_cluster.logs("worker-*.err")
    result = json.loads(done.stdout.splitlines()[-1])
    seen, node = result["a"]
    assert node == ray_cluster.worker_node_id
    assert seen == "token=*** others=['***']"
    assert not result["b_cached"]  # another secret: another key, computed on the worker
    assert result["c_cached"]  # the first secret again: its key again, a hit
    assert result["d"] == f"SecretText {len(first)} ***"
    for folder, _, names in os.walk(store):
        for name in names:
            data = Path(folder, name).read_bytes()
            if name.endswith(".gz"):  # a checksum line, then the gzip body
                data = gzip.decompress(data.partition(b"\n")[2])
            assert b"S3CR3T~" not in data, os.path.join(folder, name)
