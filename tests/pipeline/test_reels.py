"""Re-cuts on the local stack, as a user asks for them over the API: more reels of a finished job
from its stored tracks (no chunk worker runs again), one person's only, reps split apart, portrait
crops that follow the chosen person, blurred faces, clips of each cut, and links that download."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.request import ProxyHandler, Request, build_opener

import numpy as np
import pytest

from posereel import framing
from posereel.jobs import ReelStatus
from posereel.modelstore import FACE_DETECTOR
from posereel.schemas import TracksFile
from posereel.video import frame_size, probe, sample_frames
from posereel_local.client import ApiClient, ApiError
from posereel_local.stack import LocalStack

pytestmark = pytest.mark.media

TIMEOUT_S = 240.0
REEL_TIMEOUT_S = 120.0
_opener = build_opener(ProxyHandler({}))


@pytest.fixture(scope="module")
def stack(models_dir: Path) -> Iterator[LocalStack]:
    with LocalStack(api_port=0, model_dir=models_dir, settings={"chunks": {"chunk_seconds": 8.0}}) as local:
        yield local


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> ApiClient:
    return ApiClient(stack.api_url, api_key=stack.api_key)


def finished(api: ApiClient, path: Path) -> str:
    job_id = api.submit(path)
    record = api.wait(job_id, timeout_s=TIMEOUT_S)
    assert record.status == "SUCCEEDED", record.error
    return job_id


@pytest.fixture(scope="module")
def park_walk(api: ApiClient, media_dir: Path) -> str:
    """The man on the roof and the woman walking past below (two people)."""
    return finished(api, media_dir / "sports2d_park_walk.mp4")


@pytest.fixture(scope="module")
def lateral_raise(api: ApiClient, media_dir: Path) -> str:
    """Four lateral raises with short rests between them."""
    return finished(api, media_dir / "sports2d_fitness_lateral_raise.mp4")


def download(url: str, path: Path) -> Path:
    with _opener.open(url, timeout=30) as response:
        path.write_bytes(response.read())
    return path


def chunk_jobs(stack: LocalStack) -> int:
    batch = stack.client("batch")
    return sum(
        len(batch.list_jobs(jobQueue=queue, jobStatus=status)["jobSummaryList"])
        for queue in stack.resources.job_queues.values()
        for status in ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING", "SUCCEEDED", "FAILED")
    )


def tracks_of(api: ApiClient, job_id: str, tmp_path: Path) -> TracksFile:
    url = api.results(job_id)["files"]["tracks"]["url"]
    return TracksFile.model_validate_json(download(url, tmp_path / "tracks.json").read_bytes())


def test_a_recut_of_one_person_shows_only_that_person_and_runs_no_pose(
    stack: LocalStack, api: ApiClient, park_walk: str, tmp_path: Path
) -> None:
    # Given the job's first reel, from everyone's movement
    first = api.reel(park_walk, 0)
    assert first.status == ReelStatus.SUCCEEDED and first.segments
    people = {p["track_id"]: p for p in api.results(park_walk)["people"]}
    woman = next(tid for tid, p in people.items() if not p["primary"])
    workers = chunk_jobs(stack)
    # When the owner asks for a reel of the woman only
    accepted = api.create_reel(park_walk, track_ids=[woman])
    assert (accepted.reel_id, accepted.status) == (1, ReelStatus.QUEUED)
    reel = api.wait_reel(park_walk, 1, timeout_s=REEL_TIMEOUT_S)
    # Then it holds her movement only, and no chunk was analysed again
    assert reel.status == ReelStatus.SUCCEEDED, reel.error
    assert reel.segments and all(s.track_ids == [woman] for s in reel.segments)
    assert chunk_jobs(stack) == workers
    # And it is listed after the first reel, with what was chosen
    listed = api.reels(park_walk)
    assert [r.reel_id for r in listed] == [0, 1]
    assert listed[1].options.track_ids == [woman]
    # Every link of the reel downloads, saved under the video's name and the reel's number
    assert reel.files is not None and {"reel", "cut", "segments_csv", "segments_edl"} <= set(reel.files)
    for file in reel.files.values():
        with _opener.open(Request(file.url, headers={"Range": "bytes=0-0"}), timeout=30) as response:
            disposition = response.headers["Content-Disposition"]
        assert disposition.startswith("attachment;"), disposition
        assert 'filename="sports2d_park_walk-' in disposition and "-1." in disposition, disposition
    # The reel lasts what its cut says
    video = download(reel.files["reel"].url, tmp_path / "reel.mp4")
    assert probe(video).duration_s == pytest.approx(reel.duration_s, abs=0.1)


def test_a_portrait_recut_keeps_the_chosen_person_in_the_frame(
    api: ApiClient, park_walk: str, media_dir: Path, tmp_path: Path
) -> None:
    # Given the man, who jumps, flips off the roof and runs
    man = next(p["track_id"] for p in api.results(park_walk)["people"] if p["primary"])
    reel = api.wait_reel(
        park_walk,
        api.create_reel(
            park_walk, track_ids=[man], aspect="9:16", buffer_before_s=0, buffer_after_s=0
        ).reel_id,
        timeout_s=REEL_TIMEOUT_S,
    )
    assert reel.status == ReelStatus.SUCCEEDED, reel.error
    source = probe(media_dir / "sports2d_park_walk.mp4")
    # Then the reel is portrait, at the source's height
    assert reel.size_px is not None and reel.files is not None
    width, height = reel.size_px
    assert height == source.height - source.height % 2 and width / height == pytest.approx(9 / 16, abs=0.01)
    video = download(reel.files["reel"].url, tmp_path / "portrait.mp4")
    assert (probe(video).width, probe(video).height) == (width, height)
    # And in sampled frames the man's box centre is in the picture, found by matching the
    # reel's frame against the source frame at the same time
    tracks = tracks_of(api, park_walk, tmp_path)
    window = reel.segments[0] if reel.segments else None
    assert window is not None
    offsets = _crop_offsets(video, media_dir / "sports2d_park_walk.mp4", start_s=window.start_s)
    boxes = {round(f.t_s, 1): p.box for f in tracks.frames for p in f.persons if p.track_id == man}
    checked = 0
    for t_s, x in offsets:
        box = boxes.get(round(t_s, 1))
        if box is None:
            continue
        centre_px = (box[0] + box[2]) / 2 * source.width
        assert x <= centre_px <= x + width, (
            f"at {t_s} s the man's centre {centre_px:.0f} is outside {x}..{x + width}"
        )
        checked += 1
    assert checked >= 3


def _crop_offsets(reel: Path, source: Path, *, start_s: float) -> list[tuple[float, int]]:
    """(source time, left edge of the crop in source pixels) for a frame of the reel each second:
    where the reel's frame matches the source's frame at that time best (no crop position is
    stored anywhere, so the test finds it in the pictures)."""
    info, rinfo = probe(source), probe(reel)
    out = []
    for f in sample_frames(
        reel, info=rinfo, start_s=0, end_s=rinfo.duration_s, target_fps=1, max_height_px=rinfo.height
    ):
        t_s = start_s + f.t_s
        frame = next(
            sample_frames(
                source,
                info=info,
                start_s=t_s,
                end_s=t_s + 1 / info.fps,
                target_fps=info.fps,
                max_height_px=info.height,
            ),
            None,
        )
        if frame is None:
            continue
        width = f.rgb.shape[1]
        strip = f.rgb.astype(np.int16)
        errors = [
            float(np.abs(frame.rgb[:, x : x + width].astype(np.int16) - strip).mean())
            for x in range(0, frame.rgb.shape[1] - width + 1, 2)
        ]
        out.append((t_s, 2 * int(np.argmin(errors))))
    return out


def test_short_rests_split_the_reps_apart(api: ApiClient, lateral_raise: str, tmp_path: Path) -> None:
    # Given the first reel, where the short rests between reps never ended a segment
    assert len(api.reel(lateral_raise, 0).segments or []) == 1
    # When a re-cut counts a 0.4 s rest as the end of a segment, with each cut as a clip of its own
    reel = api.wait_reel(
        lateral_raise,
        api.create_reel(
            lateral_raise, min_still_s=0.4, buffer_before_s=0.3, buffer_after_s=0.3, clips=True
        ).reel_id,
        timeout_s=REEL_TIMEOUT_S,
    )
    # Then each of the four reps is a segment of its own
    assert reel.status == ReelStatus.SUCCEEDED, reel.error
    assert len(reel.segments or []) == 4, [(s.start_s, s.end_s) for s in reel.segments or []]
    # And the clips zip holds one MP4 per rep, which together last as long as the reel
    assert reel.files is not None and reel.files["clips"].name == "clips.zip"
    with zipfile.ZipFile(download(reel.files["clips"].url, tmp_path / "clips.zip")) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path)
    assert len(names) == 4 and all(n.startswith(f"clip-0{i + 1}_") for i, n in enumerate(names))
    total_s = sum(probe(tmp_path / n).duration_s for n in names)
    assert total_s == pytest.approx(reel.duration_s, abs=4 * 0.05)


def test_a_reel_with_a_duration_limit_keeps_its_strongest_segments(
    api: ApiClient, lateral_raise: str
) -> None:
    reel = api.wait_reel(
        lateral_raise,
        api.create_reel(lateral_raise, min_still_s=0.4, max_duration_s=8.0, order="energy").reel_id,
        timeout_s=REEL_TIMEOUT_S,
    )
    assert reel.status == ReelStatus.SUCCEEDED, reel.error
    assert reel.duration_s is not None and reel.duration_s <= 8.0 + 0.05
    scores = [s.score for s in reel.segments or []]
    assert scores and scores == sorted(scores, reverse=True)


def test_a_blurred_reel_shows_no_face(
    api: ApiClient, park_walk: str, media_dir: Path, models_dir: Path, tmp_path: Path
) -> None:
    # Given the face detector, which finds the man's face around his head in the source
    tracks = tracks_of(api, park_walk, tmp_path)
    clip = media_dir / "sports2d_park_walk.mp4"
    detector = framing.FaceDetector(models_dir / FACE_DETECTOR.filename)

    def faces_in(video: Path) -> int:
        info = probe(video)
        heads = framing.head_tracks(tracks.frames, frame_px=frame_size(info, max_height_px=info.height))
        found = 0
        for f in sample_frames(
            video, info=info, start_s=0, end_s=info.duration_s, target_fps=4, max_height_px=info.height
        ):
            found += len(detector.detect(f.rgb))
            for head in heads:
                at = head.at(f.t_s, max_gap_s=0.25)
                if at is not None:
                    x, y, size = at
                    found += len(detector.detect(f.rgb, framing.square(x, y, size * framing.FACE_SEARCH)))
        return found

    assert faces_in(clip) >= 5
    # When the whole clip is cut again with faces blurred (the same frame and times as the source)
    reel = api.wait_reel(
        park_walk,
        api.create_reel(park_walk, blur_faces=True, buffer_before_s=30, buffer_after_s=30).reel_id,
        timeout_s=REEL_TIMEOUT_S,
    )
    assert reel.status == ReelStatus.SUCCEEDED, reel.error
    assert (
        reel.files is not None and reel.segments and reel.segments[0].reel_start_s == reel.segments[0].start_s
    )
    # Then the detector finds none
    assert faces_in(download(reel.files["reel"].url, tmp_path / "blurred.mp4")) == 0


def test_recut_refusals_say_why(api: ApiClient, park_walk: str) -> None:
    with pytest.raises(ApiError) as unknown:
        api.create_reel(park_walk, track_ids=[99])
    assert (unknown.value.status, unknown.value.code) == (422, "INVALID_REQUEST")
    assert "99" in unknown.value.message
    with pytest.raises(ApiError) as bad:
        api.create_reel(park_walk, aspect="4:3")
    assert bad.value.status == 422
    with pytest.raises(ApiError) as first:
        api.delete_reel(park_walk, 0)
    assert (first.value.status, first.value.code) == (409, "FIRST_REEL")
    with pytest.raises(ApiError) as missing:
        api.reel(park_walk, 999)
    assert missing.value.status == 404


def test_a_deleted_recut_is_gone_with_its_files(stack: LocalStack, api: ApiClient, park_walk: str) -> None:
    reel = api.wait_reel(
        park_walk, api.create_reel(park_walk, buffer_after_s=0).reel_id, timeout_s=REEL_TIMEOUT_S
    )
    assert reel.status == ReelStatus.SUCCEEDED, reel.error
    s3 = stack.client("s3")
    prefix = f"results/{park_walk}/reels/{reel.reel_id}/"
    assert s3.list_objects_v2(Bucket=stack.settings.results_bucket, Prefix=prefix).get("KeyCount", 0) >= 3
    api.delete_reel(park_walk, reel.reel_id)
    assert s3.list_objects_v2(Bucket=stack.settings.results_bucket, Prefix=prefix).get("KeyCount", 0) == 0
    assert reel.reel_id not in [r.reel_id for r in api.reels(park_walk)]
    # The first reel and the others stay
    assert api.reel(park_walk, 0).status == ReelStatus.SUCCEEDED
