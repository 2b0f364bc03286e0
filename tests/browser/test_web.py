"""The web client as a user sees it: upload through the page, follow the job, watch the reel, jump
to a segment, download everything; a file that is not a video is refused with a clear message in its row."""

from __future__ import annotations

import json
import os
import shutil
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support import wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (shutil.which("chromium") and shutil.which("chromedriver")),
        reason="chromium and chromedriver are not installed (Debian packages: chromium chromium-driver)",
    ),
]

JOB_TIMEOUT_S = 180  # the whole pipeline on a 17 s clip, CPU only, two cores shared with others
TERMINAL = ("SUCCEEDED", "REJECTED", "FAILED", "ERROR")
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True}

VIDEO_STATE = """
const v = document.getElementById(arguments[0]);
return {src: v.currentSrc, readyState: v.readyState, duration: v.duration, currentTime: v.currentTime,
        paused: v.paused, seeking: v.seeking, error: v.error && v.error.message,
        width: v.getBoundingClientRect().width};
"""


def upload(page: Any, path: Path) -> Any:
    """Chooses ``path`` in the page's file input; returns its (new, topmost) row once it has a job."""
    from selenium.webdriver.common.by import By

    before = len(page.find_elements(By.CSS_SELECTOR, "[data-testid=job-row]"))
    page.find_element(By.CSS_SELECTOR, "[data-testid=file-input]").send_keys(str(path))
    wait_until(
        lambda: len(page.find_elements(By.CSS_SELECTOR, "[data-testid=job-row]")) > before,
        what=f"a row for {path.name}",
        timeout_s=10,
    )
    row = page.find_element(By.CSS_SELECTOR, "[data-testid=job-row]")
    assert row.get_attribute("data-filename") == path.name
    wait_until(lambda: row.get_attribute("data-job-id"), what="the upload to get a job id", timeout_s=30)
    return row


def follow(
    row: Any, timeout_s: float, *, when_running: Callable[[], object] | None = None
) -> list[tuple[str, str]]:
    """The (status, text) states the row showed, in order, until it ended; ``when_running`` is
    called once, the first time the row shows the job running."""
    seen: list[tuple[str, str]] = []

    def ended() -> bool:
        state = (row.get_attribute("data-status") or "", row.find_element("css selector", ".row-status").text)
        if not seen or seen[-1] != state:
            if when_running and state[0] == "RUNNING" and all(s != "RUNNING" for s, _ in seen):
                when_running()
            seen.append(state)
        return state[0] in TERMINAL

    wait_until(ended, what=f"the job to end (seen so far: {seen})", timeout_s=timeout_s, every_s=0.2)
    return seen


def video(page: Any, element_id: str) -> dict[str, Any]:
    return page.execute_script(VIDEO_STATE, element_id)


def test_upload_follow_watch_and_seek(
    page: Any, served: Any, media_dir: Path, tmp_path: Path, screenshot: Callable[[str], Path]
) -> None:
    from selenium.webdriver.common.by import By

    # Given the page opened from the URL `posereel up` prints, the key moved out of the address bar
    assert "key=" not in page.current_url
    assert page.execute_script("return localStorage.getItem('posereel.key')") == served.key

    # When a video is chosen in the file input
    started = time.monotonic()
    row = upload(page, media_dir / "hybrik_taiji.mp4")
    job_id = row.get_attribute("data-job-id")
    seen = follow(row, JOB_TIMEOUT_S, when_running=lambda: screenshot("upload-page-running"))
    elapsed_s = time.monotonic() - started
    screenshot("upload-page")

    # Then its row showed the upload complete, the pipeline's progress and the success
    assert row.get_attribute("data-upload-percent") == "100"
    assert row.get_attribute("data-upload-method") == "multipart"  # parts, ETags, then /complete
    statuses = [status for status, _ in seen]
    assert statuses[-1] == "SUCCEEDED", f"the job did not succeed: {seen}"
    assert {"QUEUED", "RUNNING"} & set(statuses), f"no pipeline progress was shown: {seen}"
    assert any("%" in text for status, text in seen if status == "RUNNING"), seen
    status, job = served.api("GET", f"/jobs/{job_id}")
    assert status == 200 and job["status"] == "SUCCEEDED"
    assert job["result"]["segments"] >= 1
    assert f"{job['result']['segments']} segment" in seen[-1][1]
    print(f"upload to SUCCEEDED in the page: {elapsed_s:.1f} s")

    # When the job page is opened from the row
    row.find_element(By.CSS_SELECTOR, "[data-testid=job-link]").click()
    wait_until(
        lambda: page.find_element(By.ID, "job-results").is_displayed(), what="the results", timeout_s=30
    )
    assert page.current_url.endswith(f"#/jobs/{job_id}")
    # And it says what the job cost, as the API estimates it
    cost = page.find_element(By.CSS_SELECTOR, "[data-testid=job-cost]").text
    assert cost.startswith("Cost (estimate): $") and "per video minute" in cost and "CPU " in cost, cost
    assert job["cost"]["total_usd"] > 0 and job["cost"]["cpu_s"] > 0, job["cost"]

    # Then the reel loads with the job's reel length and plays
    reel_s = job["result"]["reel_duration_s"]
    reel = wait_until(
        lambda: (state := video(page, "reel-video"))["readyState"] >= 2 and state,
        what="the reel to load",
        timeout_s=30,
    )
    assert reel["error"] is None
    assert reel["duration"] == pytest.approx(reel_s, abs=0.1)
    playing = page.execute_async_script(
        "const [id, done] = arguments; const v = document.getElementById(id); v.muted = true;"
        "v.play().then(() => done(true), (e) => done(String(e)));",
        "reel-video",
    )
    assert playing is True, f"play() was refused: {playing}"
    wait_until(
        lambda: video(page, "reel-video")["currentTime"] > 0.5, what="the reel to advance", timeout_s=15
    )
    assert video(page, "source-video")["readyState"] >= 1

    # And the page shows every segment, its thumbnail and the downloads
    status, results = served.api("GET", f"/jobs/{job_id}/results")
    assert status == 200
    segments = results["segments"]
    assert len(page.find_elements(By.CSS_SELECTOR, "[data-testid=segment-row]")) == len(segments)
    bands = page.find_elements(By.CSS_SELECTOR, "[data-testid=segment-band]")
    assert len(bands) == len(segments)
    thumbs = page.find_elements(By.CSS_SELECTOR, "[data-testid=segment-row] img")
    wait_until(
        lambda: all(page.execute_script("return arguments[0].naturalWidth", img) > 0 for img in thumbs),
        what="the thumbnails",
        timeout_s=15,
    )
    links = {a.text for a in page.find_elements(By.CSS_SELECTOR, "#downloads a")}
    files = dict(results["files"])
    bundle = files.pop("bundle")
    assert links == {file["name"] for file in files.values()}
    # with "download all" above them: the zip of them all
    everything = page.find_element(By.CSS_SELECTOR, "[data-testid=download-all]")
    link = everything.get_attribute("href") or ""
    assert everything.is_displayed() and link.split("?")[0] == bundle["url"].split("?")[0]
    assert everything.text.startswith("Download all (zip,")
    # which, clicked, saves the zip and leaves the page where it is
    page.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    here = page.current_url
    everything.click()
    saved = wait_until(
        lambda: [p for p in tmp_path.glob("*-results.zip") if p.stat().st_size == bundle["size_bytes"]],
        what="the zip to be saved",
        timeout_s=30,
    )
    with zipfile.ZipFile(saved[0]) as archive:
        assert archive.testzip() is None and any(n.endswith("/reel.mp4") for n in archive.namelist())
    assert page.current_url == here
    assert page.find_elements(By.CSS_SELECTOR, "#timeline svg path.energy.primary")
    # And a card per person says in words how long they were seen, how far they moved and how
    # steady their skeleton is, the main subject first
    cards = page.find_elements(By.CSS_SELECTOR, "[data-testid=person-card]")
    assert [int(c.get_attribute("data-track")) for c in cards] == [p["track_id"] for p in results["people"]]
    main = results["people"][0]
    assert main["primary"] and "(main)" in cards[0].text
    assert f"On screen {round(main['on_screen_pct'])} % of the time" in cards[0].text
    assert "body lengths" in cards[0].text and f"Jitter {main['jitter_level']}" in cards[0].text

    # When a segment's band on the timeline is clicked (the reel paused, as a user would look)
    page.execute_script("document.getElementById('reel-video').pause()")
    segment = segments[-1]
    band = page.find_element(
        By.CSS_SELECTOR, f"[data-testid=segment-band][data-segment='{segment['index']}']"
    )
    band.click()

    # Then the reel jumps to the segment's place in the reel and the whole video to its source time
    def settled() -> tuple[dict[str, Any], dict[str, Any]] | None:
        states = video(page, "reel-video"), video(page, "source-video")
        return None if any(s["seeking"] for s in states) else states

    reel, source = wait_until(settled, what="the players to seek", timeout_s=15)
    assert reel["currentTime"] == pytest.approx(segment["reel_start_s"], abs=0.2)
    assert source["currentTime"] == pytest.approx(segment["start_s"], abs=0.2)

    # And both players draw the tracked people over the picture, the timeline's line at the segment
    def drawn(canvas: str) -> int:
        return int(page.find_element(By.ID, canvas).get_attribute("data-people") or 0)

    wait_until(lambda: drawn("source-skeleton") >= 1, what="skeletons over the whole video", timeout_s=15)
    wait_until(lambda: drawn("reel-skeleton") >= 1, what="skeletons over the reel", timeout_s=15)
    playhead = float(page.find_element(By.CSS_SELECTOR, "[data-testid=playhead]").get_attribute("data-t"))
    assert playhead == pytest.approx(segment["start_s"], abs=0.3)
    screenshot("job-page")

    # When the skeletons are switched off, none is drawn; switched on, they are back
    toggle = page.find_element(By.CSS_SELECTOR, "[data-testid=skeleton-toggle]")
    toggle.click()
    assert (drawn("source-skeleton"), drawn("reel-skeleton")) == (0, 0)
    toggle.click()
    assert drawn("source-skeleton") >= 1

    # When the segment's play button is pressed, the whole video plays it and stops at its end
    row_of = f"[data-testid=segment-row][data-segment='{segment['index']}']"
    item = page.find_element(By.CSS_SELECTOR, row_of).find_element(By.XPATH, "..")
    item.find_element(By.CSS_SELECTOR, "[data-testid=play-segment]").click()
    stopped = wait_until(
        lambda: (
            (state := video(page, "source-video"))["paused"]
            and state["currentTime"] > segment["start_s"]
            and state
        ),
        what="the segment to play to its end",
        timeout_s=segment["end_s"] - segment["start_s"] + 15,
    )
    assert stopped["currentTime"] == pytest.approx(segment["end_s"], abs=0.5)

    # When a person's key on the timeline is clicked they are chosen for a re-cut; again, not
    key = page.find_element(By.CSS_SELECTOR, f"[data-testid=legend-person][data-track='{main['track_id']}']")
    key.click()
    assert "chosen" in (key.get_attribute("class") or "")
    key.click()
    assert "chosen" not in (key.get_attribute("class") or "")

    # When the main person is clicked on the whole video, they are chosen (and the video still pauses)
    from selenium.webdriver.common.action_chains import ActionChains

    page.find_element(  # back to the segment's start, where the main person is drawn
        By.CSS_SELECTOR, f"[data-testid=segment-band][data-segment='{segment['index']}']"
    ).click()
    wait_until(lambda: drawn("source-skeleton") >= 1, what="the people drawn again", timeout_s=15)
    boxes = json.loads(page.find_element(By.ID, "source-skeleton").get_attribute("data-boxes") or "[]")
    track, x0, y0, x1, y1 = next(b for b in boxes if b[0] == main["track_id"])
    player = page.find_element(By.ID, "source-video")
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", player)
    width, height = player.size["width"], player.size["height"]
    at = ((x0 + x1) / 2 - width / 2, y0 + (y1 - y0) / 3 - height / 2)  # the chest, from the centre
    ActionChains(page).move_to_element_with_offset(player, *at).click().perform()
    card = page.find_element(By.CSS_SELECTOR, f"[data-testid=person-card][data-track='{track}']")
    assert "chosen" in (card.get_attribute("class") or "") and video(page, "source-video")["paused"]
    ActionChains(page).move_to_element_with_offset(player, *at).click().perform()
    assert "chosen" not in (card.get_attribute("class") or "")

    # When the main person's card is clicked and a vertical re-cut of them is asked for
    assert [
        r.get_attribute("data-reel") for r in page.find_elements(By.CSS_SELECTOR, "[data-testid=reel-row]")
    ] == ["0"]
    cards[0].click()
    chosen = page.find_element(By.CSS_SELECTOR, f"[data-testid=recut-person][value='{main['track_id']}']")
    assert chosen.is_selected() and "chosen" in (cards[0].get_attribute("class") or "")
    form = page.find_element(By.CSS_SELECTOR, "[data-testid=recut-form]")
    form.find_element(By.NAME, "min_still_s").send_keys("0.4")
    form.find_element(By.CSS_SELECTOR, "select[name=aspect] option[value='9:16']").click()
    form.find_element(By.CSS_SELECTOR, "[data-testid=recut-submit]").click()

    # Then the new reel is listed, cut in seconds, and plays portrait in the reel player
    def recut_row() -> Any:
        from selenium.common.exceptions import StaleElementReferenceException

        rows = page.find_elements(By.CSS_SELECTOR, "[data-testid=reel-row][data-reel='1']")
        try:  # the list is redrawn at each poll until every reel has ended
            ended = rows and rows[0].get_attribute("data-status") in ("SUCCEEDED", "FAILED")
        except StaleElementReferenceException:
            return None
        return rows[0] if ended else None

    row = wait_until(recut_row, what="the re-cut to finish", timeout_s=120)
    assert row.get_attribute("data-status") == "SUCCEEDED", row.text
    assert "person" in row.text and "9:16" in row.text
    assert row.find_elements(By.CSS_SELECTOR, "[data-testid=reel-download-reel]")
    row.find_element(By.CSS_SELECTOR, "[data-testid=reel-play]").click()
    portrait = wait_until(
        lambda: (
            (state := video(page, "reel-video"))["readyState"] >= 2 and "/reels/1/" in state["src"] and state
        ),
        what="the re-cut to load",
        timeout_s=30,
    )
    size = page.execute_script(
        "const v = document.getElementById('reel-video'); return [v.videoWidth, v.videoHeight];"
    )
    assert size[1] > size[0], f"the re-cut is {size}, not portrait"
    assert portrait["error"] is None
    status, cut = served.api("GET", f"/jobs/{job_id}/reels/1")
    assert status == 200 and cut["options"]["track_ids"] == [main["track_id"]]
    screenshot("job-page-recut")

    # And on a phone-size screen the players take the whole width
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    narrow_timeline = "return document.querySelector('#timeline svg').viewBox.baseVal.width <= 390"
    wait_until(lambda: page.execute_script(narrow_timeline), what="the timeline redrawn for the phone")
    width = video(page, "reel-video")["width"]
    assert width > 0.9 * 390, f"the reel is {width:.0f} px wide on a 390 px screen"
    screenshot("job-page-phone")


def test_a_text_file_named_mp4_is_refused_in_its_row(
    page: Any, served: Any, tmp_path: Path, screenshot: Callable[[str], Path]
) -> None:
    from selenium.webdriver.common.by import By

    # Given a text file with a video's name
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my training notes, not a video\n" * 20)

    # When it is uploaded through the page
    row = upload(page, fake)
    job_id = row.get_attribute("data-job-id")
    seen = follow(row, 90)

    # Then it went up with the form POST, and its row says it is not a video
    assert row.get_attribute("data-upload-method") == "post"
    assert seen[-1][0] == "REJECTED", seen
    assert row.get_attribute("data-code") == "NOT_A_VIDEO"
    assert "not a video file" in seen[-1][1]
    screenshot("upload-page-rejected")

    # When its job page is opened and the job deleted (confirmed)
    row.find_element(By.CSS_SELECTOR, "[data-testid=job-link]").click()
    wait_until(
        lambda: "not a video file" in page.find_element(By.ID, "job-status").text,
        what="the job page to show why",
        timeout_s=30,
    )
    page.find_element(By.ID, "delete-job").click()
    page.switch_to.alert.accept()

    # Then the page is back on the list without it, and the API no longer knows it
    wait_until(lambda: page.find_element(By.ID, "upload-view").is_displayed(), what="the list", timeout_s=15)
    assert not page.find_elements(By.CSS_SELECTOR, f"[data-testid=job-row][data-job-id='{job_id}']")
    assert served.api("GET", f"/jobs/{job_id}")[0] == 404
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    wait_until(lambda: page.execute_script("return window.innerWidth") == 390, what="the phone viewport")
    screenshot("upload-page-phone")


def test_an_upload_cut_off_by_a_reload_goes_on_from_the_parts_already_sent(
    page: Any, served: Any, tmp_path: Path, screenshot: Callable[[str], Path]
) -> None:
    from urllib.request import Request, urlopen

    from posereel_local.client import ApiClient

    # Given a file of three parts (a multipart upload) whose first part went up before the
    # page was reloaded, the page remembering which job it was for
    big = tmp_path / "afternoon session.mp4"
    big.write_bytes(os.urandom(11 * 1024**2))  # not a video: validate rejects it once it is whole
    client = ApiClient(served.origin, api_key=served.key)
    ticket = client.create_upload(big, content_type="video/mp4")
    assert len(ticket.part_urls) == 3
    first = Request(
        ticket.part_urls[0],
        data=big.read_bytes()[: ticket.part_size_bytes],
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with urlopen(first, timeout=30) as answer:
        assert answer.status == 200
    file_key = f"{big.name}|{big.stat().st_size}|{big.stat().st_mtime_ns // 1_000_000}"
    pending = {file_key: {"job_id": ticket.job_id, "filename": big.name, "size_bytes": big.stat().st_size}}
    page.execute_script("localStorage.setItem('posereel.pendingUploads', arguments[0])", json.dumps(pending))
    page.refresh()
    wait_until(lambda: page.execute_script("return document.body.dataset.ready === 'true'"), what="the page")
    note = page.find_element("css selector", "[data-testid=pending-uploads]")
    assert note.is_displayed() and big.name in note.text
    screenshot("upload-page-unfinished")

    # When the same file is chosen again
    row = upload(page, big)
    seen = follow(row, 90)

    # Then the same job went on from the parts S3 held, and the page forgot the unfinished upload
    assert row.get_attribute("data-job-id") == ticket.job_id
    assert row.get_attribute("data-resumed") == "1"
    assert seen[-1][0] == "REJECTED" and row.get_attribute("data-code") == "NOT_A_VIDEO", seen
    assert page.execute_script("return localStorage.getItem('posereel.pendingUploads')") == "{}"
    assert not note.is_displayed()
