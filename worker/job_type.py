"""A job type as the runner sees it: its name, its payload model and its processor.

The processors register theirs (processors/registry.py); the composition root hands the registry
to the runner, so nothing in the pipeline looks processors up by import.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from graphworks_core.payloads import Payload
from worker.context import JobContext

Processor = Callable[[JobContext, Any], Awaitable[BaseModel | None]]


@dataclass(frozen=True)
class JobType:
    name: str
    model: type[Payload]
    run: Processor
