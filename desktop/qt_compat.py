"""A guard against a reference-counting bug of PySide6 6.12 on Python < 3.12.

Measured here (PySide6/shiboken6 6.12.0, abi3 build, CPython 3.11.7): every call
of a Qt method returning `void` (`QLabel.setText`, `QWidget.update`,
`QTimer.singleShot`, `QCoreApplication.processEvents`, ...) decrements the
reference count of `None` without having incremented it. `None` starts with
about 5 300 references, so any PySide6 app dies with "Fatal Python error:
none_dealloc: deallocating None" after a few thousand such calls (minutes of
use). From Python 3.12 on, `None` is immortal and the bug is harmless.

`guard_none_refcount()` detects the leak with a side-effect-free void call and,
only when it is present, gives `None` 2^40 extra references (what immortality
means on 3.12). `None` is a static object that is never freed, so this changes
nothing else. Importing any Qt-side module of the app calls it.
"""

from __future__ import annotations

import ctypes
import sys

EXTRA_REFERENCES = 1 << 40  # ~1e12 leaked calls before trouble: never, in practice
PROBE_CALLS = 64


def none_refcount_leak_per_call() -> float:
    """References of `None` lost per void Qt call (0 with a correct binding)."""
    from PySide6.QtCore import QTimer

    timer = QTimer()
    timer.stop()  # warm up (first call may create caches)
    before = sys.getrefcount(None)
    for _ in range(PROBE_CALLS):
        timer.stop()  # void, and a no-op on a stopped timer
    return (before - sys.getrefcount(None)) / PROBE_CALLS


def guard_none_refcount() -> bool:
    """Make `None` unkillable when this PySide6 leaks its references.

    Returns:
        True when the guard was applied (now or before).
    """
    if getattr(guard_none_refcount, "applied", False):
        return True
    if sys.version_info >= (3, 12) or hasattr(sys, "gettotalrefcount"):  # immortal None / debug build layout
        return False
    if none_refcount_leak_per_call() < 0.5:
        return False
    # CPython < 3.12 release builds: PyObject starts with Py_ssize_t ob_refcnt.
    refcount = ctypes.c_ssize_t.from_address(id(None))
    refcount.value += EXTRA_REFERENCES
    guard_none_refcount.applied = True  # type: ignore[attr-defined]
    return True
