"""A hook that masks captured text (secret values) before anyone sees it: the stored log,
a failed attempt's ``flowkit_attempt`` and the live lines.

Capture keeps no list of secrets: whoever does (``flowkit.secret.mask``) is installed with
:func:`set_masker`. Live lines are masked line by line as they are shown; the stored log
as a whole when it is read, so a secret split across two writes is masked too.
"""

from __future__ import annotations

from collections.abc import Callable

Masker = Callable[[str], str]

_masker: Masker | None = None


def set_masker(masker: Masker | None) -> Masker | None:
    """Pass every captured text through ``masker`` (None: none); returns the previous one."""
    global _masker
    previous, _masker = _masker, masker
    return previous


def scrub(text: str) -> str:
    """``text`` masked; if the masker fails, a notice instead (neither the unmasked text
    nor an error in the task's ``print``)."""
    masker = _masker
    if masker is None:
        return text
    try:
        return masker(text)
    except Exception as e:
        return f"[flowkit.capture: {len(text)} characters hidden, the masker failed: {e!r}]\n"
