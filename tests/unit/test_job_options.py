"""What an uploader may choose for the analysis and the first reel (JobOptions), and a re-cut's
choices (ReelRequest): how the choices land in the analysis settings, and which values are
refused."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from posereel.settings import AnalysisSettings, JobOptions, ReelRequest


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


def test_the_overlay_video_is_made_only_when_asked_for() -> None:
    assert AnalysisSettings().reel.overlay is False
    assert JobOptions(overlay=True).applied_to(AnalysisSettings()).reel.overlay is True
    # A re-cut renders no overlay, so it cannot ask for one
    with pytest.raises(ValidationError):
        ReelRequest.model_validate({"overlay": True})


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
        {"aspect": "4:3"},  # not a choice: refused, never ignored
        {"order": "size"},
        {"max_duration_s": 0.5},
        {"blur_faces": "yes"},
        {"track_ids": [1]},  # who is in it is a re-cut's choice: the people are not known yet
    ],
)
def test_values_that_are_no_choice_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate(body)


def test_whole_numbers_are_numbers() -> None:
    assert JobOptions.model_validate({"buffer_before_s": 1}).buffer_before_s == 1.0


def test_the_reel_choices_land_in_the_reel_settings() -> None:
    options = JobOptions(max_duration_s=60.0, order="energy", aspect="9:16", blur_faces=True)
    reel = options.applied_to(AnalysisSettings()).reel
    assert (reel.max_duration_s, reel.order, reel.aspect, reel.blur_faces) == (60.0, "energy", "9:16", True)


def test_a_recut_chooses_its_people_once_each_in_order() -> None:
    applied = ReelRequest(track_ids=[3, 1, 3]).applied_to(AnalysisSettings())
    assert applied.segments.track_ids == (1, 3)
    # Everyone, when nobody is chosen
    assert ReelRequest().applied_to(AnalysisSettings()).segments.track_ids is None


@pytest.mark.parametrize("body", [{"track_ids": []}, {"track_ids": ["1"]}, {"model": "full"}])
def test_a_recut_refuses_what_is_no_choice(body: dict[str, object]) -> None:
    # An empty choice would make an empty reel; the model is the analysis's, done already
    with pytest.raises(ValidationError):
        ReelRequest.model_validate(body)
