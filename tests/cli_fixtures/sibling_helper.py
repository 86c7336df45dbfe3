"""CLI fixture: the sibling module imported by sibling.py."""


def triple(x: int) -> int:
    return 3 * x
