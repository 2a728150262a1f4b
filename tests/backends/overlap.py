"""How many requests were in flight at once, from their (start, end) times in a request log."""

from __future__ import annotations


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The most of the (start, end) intervals that were open at one moment."""
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most
