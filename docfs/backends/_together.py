"""Requests made at the same time: one call per argument, the answers in argument order.

The backends fetch the pages of a long listing this way once the first page has said how many
there are (DSpace 6 collection items, DSpace 7 Discovery pages, DocSpace folder pages). A caller
that is an async generator must yield only after ``all_at_once`` returned: a generator must not
suspend inside the nursery that runs the calls.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import trio

from docfs import errors

A = TypeVar("A")
R = TypeVar("R")


async def all_at_once(call: Callable[[A], Awaitable[R]], args: Sequence[A]) -> list[R]:
    """``call(a)`` for every ``a`` of ``args`` concurrently; their results in ``args`` order.
    When several fail, the first ``DocfsError`` among them is raised (the errno the caller
    expects), as ``errors.first_of`` chooses."""
    results: list[R | None] = [None] * len(args)

    async def one(i: int, arg: A) -> None:
        results[i] = await call(arg)

    try:
        async with trio.open_nursery() as nursery:
            for i, arg in enumerate(args):
                nursery.start_soon(one, i, arg)
    except BaseExceptionGroup as group:
        raise errors.first_of(group) from None
    return results  # type: ignore[return-value]  # every slot was filled, or we raised
