"""Handlers whose JSON body's model is known only at run time (one enqueue route per job type, the
bulk union, a schedule's fields): FastAPI reads a parameter's model from the signature, so the
signature is given it. FastAPI then validates the body with it and OpenAPI documents it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Body
from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])


def body_of(model: type[BaseModel], description: str | None = None) -> Callable[[F], F]:
    """Make the handler's first parameter (keyword-only) its body, validated as `model`."""

    def decorate(handler: F) -> F:
        signature = inspect.signature(handler, eval_str=True)
        first, *rest = signature.parameters.values()
        body = first.replace(annotation=model, default=Body(description=description))
        handler.__signature__ = signature.replace(parameters=[body, *rest])  # type: ignore[attr-defined]
        return handler

    return decorate
