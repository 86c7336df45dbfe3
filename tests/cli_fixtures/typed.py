"""CLI fixture: one workflow input of each type the command line converts."""

from pathlib import Path
from typing import Optional

import flowkit as fk


@fk.task
def show(
    n: int,
    x: float,
    flag: bool,
    name: str,
    path: Path,
    maybe: int | None,
    depths: list[int],
    opts: dict[str, float],
    max_depth: int,
) -> str:
    return repr((n, x, flag, name, path, maybe, depths, opts, max_depth))


@fk.workflow
def echo(
    n: int,
    x: float = 1.5,
    flag: bool = False,
    name: str = "a",
    path: Path = Path("."),
    maybe: Optional[int] = None,  # noqa: UP045 - the Optional spelling is what is tested
    depths: list[int] = [1],  # noqa: B006
    opts: dict[str, float] = {},  # noqa: B006
    max_depth: int = 3,
) -> str:
    return show(n, x, flag, name, path, maybe, depths, opts, max_depth)
