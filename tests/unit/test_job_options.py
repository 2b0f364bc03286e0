"""What an uploader may choose for the analysis and the first reel (JobOptions): how the choices
land in the analysis settings, and which values are refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from posereel.settings import AnalysisSettings, JobOptions


def test_no_choice_keeps_the_defaults() -> None:
    assert JobOptions().applied_to(AnalysisSettings()) == AnalysisSettings()


def test_each_choice_lands_in_its_setting() -> None:
    options = JobOptions(min_segment_s=1.5, buffer_before_s=0.0, buffer_after_s=0.5, model="heavy")
    applied = options.applied_to(AnalysisSettings())
    assert applied.segments.min_segment_s == 1.5
    assert (applied.reel.buffer_before_s, applied.reel.buffer_after_s) == (0.0, 0.5)
    assert applied.pose.model == "heavy"
    # And nothing else moved
    assert applied.segments.min_still_s == AnalysisSettings().segments.min_still_s
    assert applied.tracking == AnalysisSettings().tracking


def test_a_shorter_rest_also_stops_segments_being_joined_over_it() -> None:
    # Given the default join gap of 1.5 s, a rest of 0.4 s would end a segment and be joined again
    applied = JobOptions(min_still_s=0.4).applied_to(AnalysisSettings())
    assert applied.segments.min_still_s == 0.4
    assert applied.segments.merge_gap_s == 0.4
    # A longer rest leaves the join gap alone
    assert JobOptions(min_still_s=5.0).applied_to(AnalysisSettings()).segments.merge_gap_s == 1.5


@pytest.mark.parametrize(
    "body",
    [
        {"min_still_s": "2"},  # a string is no number
        {"buffer_before_s": True},
        {"min_still_s": 0.0},  # every flicker would end a segment
        {"buffer_after_s": -1},
        {"buffer_after_s": 31},
        {"model": "huge"},
        {"aspect": "9:16"},  # not a choice (yet): refused, never ignored
    ],
)
def test_values_that_are_no_choice_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate(body)


def test_whole_numbers_are_numbers() -> None:
    assert JobOptions.model_validate({"buffer_before_s": 1}).buffer_before_s == 1.0
