"""Caching fixture: an input whose pickle differs every time it is serialised."""

import os

import flowkit as fk


class Noisy:
    """Pickles with a fresh random salt, so its bytes never repeat."""

    def __init__(self, value: int) -> None:
        self.value = value

    def __reduce__(self) -> tuple[object, ...]:
        return (Noisy, (self.value,), {"salt": os.urandom(8)})


@fk.task(cache=True)
def double(n: int) -> int:
    return 2 * n


@fk.task(cache=True)
def use(obj: Noisy, m: int) -> int:
    return obj.value + m


@fk.workflow
def unstable(obj: Noisy, n: int = 1) -> int:
    return use(obj, double(n))


if __name__ == "__main__":
    from _drive import main

    main(unstable, obj=Noisy(int(os.environ["FK_VALUE"])))
