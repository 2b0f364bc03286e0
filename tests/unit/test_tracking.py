"""Tracker (the library tracker behind posereel.tracking): stable ids through crossing, gaps and
reordering, every sighting of a track kept (synthetic poses); the pose similarities."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest

from posereel.errors import InputError
from posereel.linking import drop_short_tracks
from posereel.schemas import FramePoses, PersonPose
from posereel.settings import TrackingSettings
from posereel.similarity import PoseArrays, keypoint_similarity
from posereel.tracking import Tracker, track_frames
from tests.builders import person, skeleton

ASPECT = 16 / 9
FPS = 10.0


# --- builders ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """Where a synthetic person is: hip centre (x of the width, y of the height), body length as a
    fraction of the frame height, arm angle from hanging (0) to raised overhead (pi)."""

    x: float
    y: float = 0.6
    height: float = 0.5
    arms: float = 0.3


def pose(body: Body, *, score: float = 0.9, visibility: float = 0.95, jitter: float = 0.0) -> PersonPose:
    """``body``'s pose (tests.builders.person) in a frame of aspect ``ASPECT``, without a track id."""
    arms = skeleton(left_arm=body.arms, right_arm=body.arms)
    return person(
        None,
        cx=body.x,
        cy=body.y,
        body=body.height,
        aspect=ASPECT,
        offsets=arms,
        score=score,
        visibility=visibility,
        jitter=jitter,
    )


def frame(index: int, *bodies: Body) -> FramePoses:
    return FramePoses(index=index, t_s=index / FPS, persons=[pose(b) for b in bodies])


def run(frames: list[FramePoses], settings: TrackingSettings | None = None) -> list[FramePoses]:
    return track_frames(frames, settings or TrackingSettings(), fps=FPS)


def id_near(f: FramePoses, x: float) -> int | None:
    """Track id of the person whose hip centre is nearest to ``x`` in frame ``f``."""
    best = min(f.persons, key=lambda p: abs((p.landmarks[23][0] + p.landmarks[24][0]) / 2 - x))
    return best.track_id


def assert_unique_ids(frames: list[FramePoses]) -> None:
    for f in frames:
        ids = [p.track_id for p in f.persons]
        assert None not in ids, f.index
        assert len(ids) == len(set(ids)), f"frame {f.index} gives one id twice: {ids}"


def crossing(n: int = 40) -> list[tuple[Body, Body]]:
    """Two walkers crossing: A left to right in front, B right to left further back (smaller,
    higher in the frame); both swing their arms."""
    out = []
    for i in range(n):
        s = i / (n - 1)
        out.append(
            (
                Body(x=0.2 + 0.6 * s, y=0.62, height=0.5, arms=0.3 + 0.4 * math.sin(i)),
                Body(x=0.8 - 0.6 * s, y=0.52, height=0.36, arms=0.3 - 0.2 * math.sin(i)),
            )
        )
    return out


# --- synthetic cases ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hide_back_person", "algorithm"),
    [(False, "bytetrack"), (False, "ocsort"), (True, "ocsort")],
    ids=["both seen", "both seen, ocsort", "back person hidden, ocsort"],
)
def test_two_people_crossing_keep_their_ids(hide_back_person: bool, algorithm: str) -> None:
    # Given two people walking past each other; optionally the one behind is not detected
    # while they overlap (a full occlusion: OC-SORT's observation-centric motion keeps both
    # through it, ByteTrack swaps them here as the box widths swing with the arms; on the
    # labelled clips ByteTrack scores better, docs/PERCEPTION.md)
    path = crossing()
    frames = []
    for i, (a, b) in enumerate(path):
        hidden = hide_back_person and abs(a.x - b.x) < 0.1
        frames.append(frame(i, a) if hidden else frame(i, a, b))
    assert len({len(f.persons) for f in frames}) == (2 if hide_back_person else 1)
    # When tracked
    out = run(frames, TrackingSettings(algorithm=algorithm))  # type: ignore[arg-type]
    # Then each keeps the id it started with (0 for the one starting on the left)
    assert_unique_ids(out)
    for f, (a, b) in zip(out, path, strict=True):
        assert id_near(f, a.x) == 0, f.index
        if len(f.persons) == 2:
            assert id_near(f, b.x) == 1, f.index


@pytest.mark.parametrize(
    ("gap_frames", "expected_ids"),
    [
        pytest.param(3, [0, 0], id="short gap keeps the id"),
        pytest.param(8, [0, 0], id="gap within lost_after_s keeps the id"),
        pytest.param(13, [0, 1], id="gap over lost_after_s starts a new id"),
        pytest.param(25, [0, 1], id="long gap starts a new id"),
    ],
)
def test_person_leaving_and_coming_back(gap_frames: int, expected_ids: list[int]) -> None:
    # Given one person seen for 10 frames, then unseen for gap_frames (empty frames), then back
    settings = TrackingSettings(lost_after_s=1.0)
    before = [frame(i, Body(x=0.5)) for i in range(10)]
    empty = [frame(10 + i) for i in range(gap_frames)]
    after = [frame(10 + gap_frames + i, Body(x=0.5)) for i in range(10)]
    # When tracked
    out = run(before + empty + after, settings)
    # Then the id after the gap depends on the gap length (1 s = 10 frames at 10 fps)
    assert [out[0].persons[0].track_id, out[-1].persons[0].track_id] == expected_ids
    assert [len(f.persons) for f in out] == [1] * 10 + [0] * gap_frames + [1] * 10


def test_gap_counts_grid_frames_even_when_frames_are_missing() -> None:
    # Given a person whose frames 5..20 never reach the tracker at all (not even empty)
    frames = [frame(i, Body(x=0.5)) for i in [*range(5), *range(21, 25)]]
    # When tracked with lost_after_s 1 s (10 frames)
    out = run(frames, TrackingSettings(lost_after_s=1.0))
    # Then the 16 grid frames unseen end the track
    assert {p.track_id for f in out for p in f.persons} == {0, 1}


def test_every_sighting_of_a_track_is_kept_including_its_first() -> None:
    # Given a person from the first frame and a second one who walks in at frame 6
    frames = [frame(i, Body(x=0.3), *([Body(x=0.75, height=0.4)] if i >= 6 else [])) for i in range(12)]
    # When tracked (the library names a track on its second sighting)
    out = run(frames)
    # Then both are in every frame they were found in, the newcomer from frame 6 on
    assert [len(f.persons) for f in out] == [1] * 6 + [2] * 6
    assert [id_near(f, 0.75) for f in out[6:]] == [1] * 6
    assert [f.index for f in out] == list(range(12))


def test_shuffled_detection_order_does_not_change_ids() -> None:
    # Given three people, returned in a different random order every frame
    rng = random.Random(7)
    bodies = [
        [Body(x=0.2 + 0.005 * i), Body(x=0.5, y=0.55 + 0.003 * i, height=0.4), Body(x=0.8 - 0.004 * i)]
        for i in range(30)
    ]
    ordered = [frame(i, *b) for i, b in enumerate(bodies)]
    shuffled = []
    for f in ordered:
        persons = list(f.persons)
        rng.shuffle(persons)
        shuffled.append(f.model_copy(update={"persons": persons}))
    # When both are tracked
    out_ordered, out_shuffled = run(ordered), run(shuffled)
    # Then every person gets the same id either way, and ids follow the people left to right
    assert out_shuffled == out_ordered
    for f, b in zip(out_shuffled, bodies, strict=True):
        assert [id_near(f, body.x) for body in b] == [0, 1, 2]


def test_a_doubtful_pose_no_track_wants_is_left_out() -> None:
    # Given one person and, every third frame, a doubtful pose far from them
    frames = []
    for i in range(20):
        persons = [pose(Body(x=0.3 + 0.01 * i))]
        if i % 3 == 0:
            persons.insert(0, pose(Body(x=0.8, height=0.3), score=0.4))
        frames.append(FramePoses(index=i, t_s=i / FPS, persons=persons))
    # When tracked
    out = run(frames)
    # Then each frame keeps exactly the real pose, always with id 0
    for f in out:
        assert [(p.track_id, p.score) for p in f.persons] == [(0, 0.9)]


def test_two_people_standing_close_are_not_taken_for_a_ghost() -> None:
    # Given two people side by side whose boxes overlap
    frames = [frame(i, Body(x=0.45, arms=0.2), Body(x=0.52, arms=1.4)) for i in range(10)]
    # When tracked
    out = run(frames)
    # Then both are kept with their own ids
    assert all(len(f.persons) == 2 for f in out)
    assert_unique_ids(out)


def test_fast_articulation_keeps_one_track() -> None:
    # Given a person doing jumping jacks (arms down / overhead on alternate frames) with a missed frame
    frames = [frame(i, Body(x=0.5, arms=0.2 if i % 2 else 2.8)) for i in range(30)]
    frames[12] = frame(12)
    # When tracked
    out = run(frames)
    # Then one id throughout
    assert {p.track_id for f in out for p in f.persons} == {0}


@pytest.mark.parametrize(("aspect", "isotropic"), [(ASPECT, True), (1.0, False)])
def test_keypoint_similarity_measures_in_frame_heights(aspect: float, isotropic: bool) -> None:
    # Given a pose moved by the same physical distance to the right and downwards
    d = 0.03
    base = pose(Body(x=0.5))
    right = pose(Body(x=0.5 + d / ASPECT))
    down = pose(Body(x=0.5, y=0.6 + d))
    arrays = [PoseArrays.from_persons([p], aspect=aspect) for p in (base, right, down)]
    # When compared with the aspect given to the tracker
    sim_right = keypoint_similarity(arrays[0], arrays[1], keypoint_sigma=0.2)[0, 0]
    sim_down = keypoint_similarity(arrays[0], arrays[2], keypoint_sigma=0.2)[0, 0]
    # Then both moves look alike only with the frame's real aspect ratio
    assert math.isclose(sim_right, sim_down, rel_tol=1e-6) is isotropic


def test_frames_must_come_in_increasing_order() -> None:
    tracker = Tracker(TrackingSettings(), fps=FPS)
    tracker.update(frame(5, Body(x=0.5)))
    with pytest.raises(InputError):
        tracker.update(frame(5, Body(x=0.5)))


@pytest.mark.parametrize("algorithm", ["bytetrack", "ocsort"])
def test_both_library_trackers_follow_people(algorithm: str) -> None:
    # Given two people drifting apart
    frames = [frame(i, Body(x=0.4 - 0.005 * i), Body(x=0.6 + 0.005 * i)) for i in range(30)]
    # When tracked with either library tracker
    out = run(frames, TrackingSettings(algorithm=algorithm))  # type: ignore[arg-type]
    # Then each person keeps one id
    assert [[id_near(f, 0.4 - 0.005 * f.index), id_near(f, 0.6 + 0.005 * f.index)] for f in out] == [
        [0, 1]
    ] * 30


def test_drop_short_tracks_orders_ids_by_first_appearance() -> None:
    # Given ids assigned in an arbitrary order
    a, b = pose(Body(x=0.7)), pose(Body(x=0.2))
    frames = [
        FramePoses(index=0, t_s=0.0, persons=[a.model_copy(update={"track_id": 9})]),
        FramePoses(
            index=1,
            t_s=0.1,
            persons=[a.model_copy(update={"track_id": 9}), b.model_copy(update={"track_id": 4})],
        ),
    ]
    # When renumbered
    out = drop_short_tracks(frames, min_frames=1)
    # Then the first seen is 0, and persons are sorted by id
    assert [[p.track_id for p in f.persons] for f in out] == [[0], [0, 1]]


def test_four_moving_people_keep_four_ids_over_many_frames() -> None:
    # Given 300 frames of 4 people drifting right, arms swinging
    frames = [
        frame(i, *(Body(x=0.15 + 0.2 * k + 0.001 * i, arms=0.3 + 0.1 * math.sin(i + k)) for k in range(4)))
        for i in range(300)
    ]
    # When tracked
    out = run(frames)
    # Then there are four ids, one per person, in every frame
    assert {p.track_id for f in out for p in f.persons} == {0, 1, 2, 3}
    assert all(len({p.track_id for p in f.persons}) == 4 for f in out)
