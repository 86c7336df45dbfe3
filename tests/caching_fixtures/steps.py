"""Caching fixture: a chain whose task bodies leave marks, with switches for failures and hangs.

Every body appends a line to the file named by ``$FK_MARKS`` (when set), so a test can tell
which bodies ran even in a process it killed. ``$FK_FAIL=gate`` makes `gate` raise;
``$FK_BLOCK=PATH`` makes `gate` wait until PATH exists.
"""

import os
import time

import flowkit as fk


def mark(what: str) -> None:
    path = os.environ.get("FK_MARKS")
    if path:
        with open(path, "a") as f:
            f.write(what + "\n")


@fk.task(cache=True)
def load(n: int) -> list[int]:
    mark("load")
    return list(range(n))


@fk.task(cache=True)
def square(x: int) -> int:
    mark(f"square {x}")
    return x * x


@fk.task(cache=True)
def gate(xs: list[int]) -> int:
    mark("gate")
    if os.environ.get("FK_FAIL") == "gate":
        raise RuntimeError("gate is switched off by FK_FAIL")
    block = os.environ.get("FK_BLOCK")
    while block and not os.path.exists(block):
        time.sleep(0.05)
    return sum(xs)


@fk.task(cache=True)
def report(total: int, n: int) -> str:
    mark("report")
    return f"sum of squares below {n} = {total}"


@fk.workflow
def steps(n: int = 4) -> str:
    return report(gate(square.map(x=load(n))), n)


if __name__ == "__main__":
    from _drive import main

    main(steps)
