"""Result file names: what a download is saved as."""

from __future__ import annotations

from posereel.outputs import attachment, download_name


def test_a_download_is_named_after_the_video_then_the_file() -> None:
    assert download_name("dance class.mov", "reel.mp4") == "dance class-reel.mp4"
    assert download_name("taiji.mp4", "thumbnails/segment_002.jpg") == "taiji-segment_002.jpg"
    assert download_name(".mp4", "tracks.json") == "video-tracks.json"


def test_the_attachment_header_has_an_ascii_name_and_the_utf8_one() -> None:
    header = attachment('Tänze "Kurs".mp4')
    assert header.startswith('attachment; filename="T_nze _Kurs_.mp4"; ')
    assert header.endswith("filename*=UTF-8''T%C3%A4nze%20%22Kurs%22.mp4")


def test_a_name_of_nothing_but_symbols_still_saves() -> None:
    assert attachment("\u4e2d\u6587").startswith('attachment; filename="_"')
