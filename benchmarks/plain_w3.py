"""W3 floor: a minimal content-addressed on-disk cache (one pickle file per key).

key = sha256(pickle((qualname, args))), file ``cache/<key[:2]>/<key>``, read with
``open`` + ``pickle.load`` (mode ``os``) or through ``fsspec.filesystem("file")``
(mode ``fsspec``), in a thread pool of 4.
"""

import time

t0 = time.perf_counter()
import hashlib  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

from common import (  # noqa: E402
    FILL,
    N_W2,
    REPEAT,
    WORKERS,
    disk_bytes,
    du,
    emit,
    expected_w2,
    mode_arg,
    perf,
    state_dir,
)

mode = mode_arg("os")  # os | fsspec
if mode == "fsspec":
    import fsspec

    fs = fsspec.filesystem("file")
CACHE = state_dir("plain", "w3_" + mode)
executed = 0


def cached(fn: Callable[..., Any]) -> Callable[..., Any]:
    name = fn.__module__ + "." + fn.__qualname__

    def wrapper(*args: Any) -> Any:
        global executed
        key = hashlib.sha256(pickle.dumps((name, args), protocol=5)).hexdigest()
        d = os.path.join(CACHE, key[:2])
        p = os.path.join(d, key)
        if mode == "fsspec":
            try:
                with fs.open(p, "rb") as f:
                    return pickle.load(f)
            except FileNotFoundError:
                pass
            executed += 1
            out = fn(*args)
            fs.makedirs(d, exist_ok=True)
            with fs.open(p + ".tmp", "wb") as f:
                pickle.dump(out, f, protocol=5)
            fs.mv(p + ".tmp", p)
            return out
        try:
            with open(p, "rb") as f:
                return pickle.load(f)
        except FileNotFoundError:
            pass
        executed += 1
        out = fn(*args)
        os.makedirs(d, exist_ok=True)
        with open(p + ".tmp", "wb") as f:
            pickle.dump(out, f, protocol=5)
        os.replace(p + ".tmp", p)
        return out

    return wrapper


@cached
def square(x: int) -> int:
    return x * x


@cached
def total(xs: tuple[int, ...]) -> int:
    return sum(xs)


emit("plain", "w3", "import", perf() - t0, mode=mode)
for rep in range(REPEAT):
    executed = 0
    t = perf()
    with ThreadPoolExecutor(WORKERS) as ex:
        futs = [ex.submit(square, i) for i in range(N_W2)]
        r = ex.submit(total, tuple(f.result() for f in futs)).result()
    dt = perf() - t
    assert r == expected_w2()
    # cache size after the fill run only: walking the store is not charged to the hit runs
    size = {"cache_bytes": du(CACHE), "cache_disk": disk_bytes(CACHE)} if FILL else {}
    emit(
        "plain",
        "w3",
        "run",
        dt,
        mode=mode,
        rep=rep,
        n=N_W2,
        executed=executed,
        **size,
    )
