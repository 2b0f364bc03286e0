"""The naive way to do what PoseReel does, for the benchmark to compare against.

Every frame at full resolution, decoded with OpenCV, single-person MediaPipe (lite, VIDEO mode),
then the given windows cut and joined with MoviePy clip by clip. It does the same work a first
attempt would do; its output is thrown away.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import mediapipe as mp
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core.base_options import BaseOptions
from moviepy import VideoFileClip, concatenate_videoclips


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("video", type=Path)
    parser.add_argument("--windows", required=True, help="JSON list of [start_s, end_s]")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    model = Path(os.environ["POSEREEL_MODEL_DIR"]) / "pose_landmarker_lite.task"
    options = vision.PoseLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(model)),
        running_mode=vision.RunningMode.VIDEO,
        num_poses=1,
    )
    cap = cv2.VideoCapture(str(args.video))
    fps = cap.get(cv2.CAP_PROP_FPS)
    index = 0
    with vision.PoseLandmarker.create_from_options(options) as landmarker:
        while True:
            ok, bgr = cap.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            landmarker.detect_for_video(
                mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb), int(index * 1000 / fps)
            )
            index += 1
    windows = json.loads(args.windows)
    if not windows:
        return
    source = VideoFileClip(str(args.video))
    clips = [source.subclipped(start, min(end, source.duration)) for start, end in windows]
    reel = concatenate_videoclips(clips)
    reel.write_videofile(str(args.out), codec="libx264", audio=source.audio is not None, logger=None)
    source.close()


if __name__ == "__main__":
    main()
