"""Which Kafka partition a Faust table write goes to, when an agent works on a batch of events.

A Faust table writes each change to the changelog partition of the *current event*. In a batch taken with
``stream.take_events`` the current event is whichever arrived last, possibly from another partition than the
customer being written, and the change would then be restored on the wrong worker after a rebalance. Setting
the current event to one of the customer's own events for the write keeps state and input co-partitioned.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import faust
from faust import streams as faust_streams


@contextmanager
def event_context(event: faust.EventT[bytes]) -> Iterator[None]:
    """Make ``event`` Faust's current event for the duration of the block."""
    # Faust keeps the current event in a private context variable (faust.streams._current_event) holding a
    # weak reference; there is no public setter.
    token = faust_streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust_streams._current_event.reset(token)
