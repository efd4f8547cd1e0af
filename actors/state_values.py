"""Strict readers of the values a snapshot holds: each returns the value, or raises `Bad` with
what was expected, for `actors.state_codec` to report with where it was found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, get_args

__all__ = [
    "Bad",
    "each",
    "literal",
    "opt",
    "read_bool",
    "read_float",
    "read_int",
    "read_list",
    "read_str",
    "row",
]

T = TypeVar("T")


class Bad(Exception):
    """A value of the wrong shape; the caller adds where."""


def read_str(v: object) -> str:
    if type(v) is not str:
        raise Bad(f"expected a string, got {type(v).__name__}")
    return v


def read_int(v: object) -> int:
    if type(v) is not int:
        raise Bad(f"expected an integer, got {type(v).__name__}")
    return v


def read_bool(v: object) -> bool:
    if type(v) is not bool:
        raise Bad(f"expected a boolean, got {type(v).__name__}")
    return v


def read_float(v: object) -> float:
    if type(v) in (int, float):
        return float(v)  # type: ignore[arg-type]
    raise Bad(f"expected a number, got {type(v).__name__}")


def opt(read: Callable[[object], T]) -> Callable[[object], T | None]:
    return lambda v: None if v is None else read(v)


def literal(hint: object) -> Callable[[object], Any]:
    allowed = get_args(hint)

    def read(v: object) -> Any:
        if v not in allowed or type(v) is not str:
            raise Bad(f"expected one of {', '.join(allowed)}, got {v!r:.40}")
        return v

    return read


def read_list(v: object) -> list[Any]:
    if type(v) is list:  # what msgpack gives: no copy
        return v
    if type(v) is tuple:
        return list(v)
    raise Bad(f"expected a list, got {type(v).__name__}")


def row(v: object, size: int) -> list[Any]:
    items = v if type(v) is list else read_list(v)
    if len(items) != size:
        raise Bad(f"expected {size} items, got {len(items)}")
    return items


def each(v: object, read: Callable[[object], T], what: str) -> list[T]:
    out = []
    for i, item in enumerate(read_list(v)):
        try:
            out.append(read(item))
        except Bad as e:
            raise Bad(f"{what}[{i}]: {e}") from None
    return out
