"""The scan hook: every file uploaded or downloaded by the attachment processor passes through it.

The default does nothing. ATTACHMENT_SCAN_HOOK=`module:attribute` names a ScanHook (or a no-argument
factory of one). No ClamAV adapter ships: the clamd client libraries on PyPI (`clamd` 1.0.2 of 2014,
`pyclamd` 0.4.0 of 2017) are unmaintained, so an operator plugs their own scanner in here.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class ScanVerdict:
    clean: bool
    detail: str = ""


class ScanHook(Protocol):
    async def scan(self, path: Path, *, name: str) -> ScanVerdict: ...


class NoScan:
    async def scan(self, path: Path, *, name: str) -> ScanVerdict:
        return ScanVerdict(True)


@functools.lru_cache(maxsize=8)
def load_scan_hook(spec: str | None) -> ScanHook:
    """The hook ATTACHMENT_SCAN_HOOK names, or NoScan."""
    if not spec:
        return NoScan()
    module_name, _, attribute = spec.partition(":")
    if not attribute:
        raise ValueError(f"ATTACHMENT_SCAN_HOOK must be 'module:attribute', got {spec!r}")
    found = getattr(importlib.import_module(module_name), attribute)
    hook = found() if callable(found) and not hasattr(found, "scan") else found
    if not hasattr(hook, "scan"):
        raise ValueError(f"ATTACHMENT_SCAN_HOOK {spec!r} has no scan(path, name=...) method")
    return hook  # type: ignore[no-any-return]
