"""Discontinuities in an input partition's offsets, as the worker receives them."""

from __future__ import annotations

from streams.offset_trail import OffsetTrail


def test_consecutive_offsets_pass_and_a_jump_or_a_step_back_is_reported_with_the_previous_offset() -> None:
    trail = OffsetTrail()
    assert [trail.note("b", 1, o) for o in (10, 11, 12)] == [None, None, None]
    assert trail.note("b", 1, 20) == 12, "records 13-19 never received"
    assert trail.note("b", 1, 15) == 20, "a re-read"
    assert trail.note("b", 2, 7) is None, "partitions are followed separately"
    assert trail.note("r", 1, 99) is None, "and topics"


def test_a_revoked_partition_starts_a_new_trail() -> None:
    trail = OffsetTrail()
    trail.note("b", 1, 10)
    trail.forget("b", 1)
    assert trail.note("b", 1, 4) is None
