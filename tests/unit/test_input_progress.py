"""Records of an input partition are applied in offset order with none left out; redeliveries are skipped."""

from __future__ import annotations

from streams.input_progress import InputProgress

B = "loan.behavior.v1"


def test_the_first_record_starts_the_partition_and_each_next_one_follows() -> None:
    progress = InputProgress()
    assert [progress.judge(B, 1, o) for o in (40, 41, 42)] == ["apply", "apply", "apply"]
    assert progress.expected[(B, 1)] == 43
    assert progress.judge(B, 2, 7) == "apply", "partitions are followed separately"


def test_a_record_already_applied_is_a_replay_and_changes_nothing() -> None:
    progress = InputProgress()
    for o in (10, 11, 12):
        progress.judge(B, 1, o)
    assert progress.judge(B, 1, 11, lambda: 500) == "replay"
    assert progress.expected[(B, 1)] == 13


def test_a_record_beyond_the_expected_one_is_a_gap_and_so_is_every_later_one_until_the_missing_arrive() -> None:
    progress = InputProgress()
    progress.judge(B, 1, 10)
    assert progress.judge(B, 1, 12) == "gap", "11 never arrived"
    assert progress.judge(B, 1, 13) == "gap"
    assert progress.expected[(B, 1)] == 11
    assert [progress.judge(B, 1, o) for o in (11, 12, 13)] == ["apply", "apply", "apply"], "read, in order"


def test_a_partition_that_ends_before_the_expected_offset_was_created_again() -> None:
    progress = InputProgress()
    progress.skip_to(B, 1, 5000)  # as loaded from the table
    assert progress.judge(B, 1, 0, lambda: 3) == "apply"
    assert progress.expected[(B, 1)] == 1
    asked: list[int] = []

    def end() -> int | None:
        asked.append(1)
        return None

    progress.judge(B, 1, 1, end)
    assert asked == [], "the end offset is only asked for a record below the expectation"
