"""Draw a PoseReel ground-truth labels file onto the video frames it refers to, for checking by eye.

usage:
  python tests/bench/render_labels.py LABELS.json [--video PATH] [--out DIR] [--times 0.0,2.5] [--scale 2]
                         [--crop x0,y0,x1,y1] [--grid 50] [--sheet COLS]

  LABELS.json  one of the tests/data/tracking/<clip_stem>.json files
  --video      the clip; default ../shared/media/<clip> beside the repository (the "clip" field)
  --out        output folder (default ./check_render); one PNG per labelled frame
  --times      only these t_s values (comma separated); default all labelled frames
  --scale      enlarge (or shrink) the output image; coordinates are still source pixels
  --crop       draw only this source-pixel region (e.g. to inspect one person)
  --grid N     also draw a coordinate grid every N source pixels (labelled)
  --sheet C    additionally write <out>/sheet.png, all rendered frames tiled C per row

Frames are decoded sequentially with OpenCV and frame index "frame_index" (= round(t_s*fps))
is used, which is the same frame as `ffmpeg -ss t_s -i clip -frames:v 1` (accurate seek).
Boxes: solid = normal, dashed = "partial" (heavily occluded / cut by the frame edge).
Needs numpy and opencv-python(-headless).
"""

import argparse
import json
import os

import cv2
import numpy as np

COLS = [
    (255, 255, 255),
    (0, 0, 255),
    (0, 220, 0),
    (255, 80, 0),
    (255, 0, 255),
    (0, 230, 255),
    (255, 255, 0),
    (0, 120, 255),
    (160, 0, 255),
    (0, 255, 160),
    (120, 120, 255),
    (200, 200, 0),
    (80, 160, 80),
]


def color(i):
    return COLS[int(i) % len(COLS)]


def dashed_rect(img, p0, p1, col, th, dash=8):
    (x0, y0), (x1, y1) = p0, p1
    for a, b in [((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))]:
        a, b = np.array(a, float), np.array(b, float)
        L = np.linalg.norm(b - a)
        n = max(1, int(L // dash))
        for k in range(0, n, 2):
            s = a + (b - a) * (k / n)
            e = a + (b - a) * (min(k + 1, n) / n)
            cv2.line(img, tuple(int(v) for v in s), tuple(int(v) for v in e), col, th)


def render(frame, persons, scale=1.0, crop=None, grid=0, title=""):
    H, W = frame.shape[:2]
    x0, y0, x1, y1 = crop if crop else (0, 0, W, H)
    img = frame[y0:y1, x0:x1]
    if scale != 1.0:
        img = cv2.resize(
            img, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
        )
    img = np.ascontiguousarray(img)

    def P(x, y):
        return round((x - x0) * scale), round((y - y0) * scale)

    fs = max(0.4, min(1.2, 0.5 * img.shape[1] / 640))
    if grid:
        for gx in range((x0 // grid + 1) * grid, x1, grid):
            p = P(gx, y0)[0]
            cv2.line(img, (p, 0), (p, img.shape[0]), (0, 180, 180), 1)
            cv2.putText(img, str(gx), (p + 2, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 255), 1)
        for gy in range((y0 // grid + 1) * grid, y1, grid):
            p = P(x0, gy)[1]
            cv2.line(img, (0, p), (img.shape[1], p), (0, 180, 180), 1)
            cv2.putText(img, str(gy), (2, p - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 255, 255), 1)
    th = max(1, round(img.shape[1] / 700))
    for p in persons:
        b = p["box"]
        col = color(p["id"])
        a, c = P(b[0], b[1]), P(b[2], b[3])
        if p.get("partial"):
            dashed_rect(img, a, c, col, th)
        else:
            cv2.rectangle(img, a, c, col, th)
        lab = f"{p['id']}" + ("p" if p.get("partial") else "")
        ty = a[1] - 4 if a[1] > 20 else a[1] + int(22 * fs)
        cv2.putText(img, lab, (a[0] + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), th + 2)
        cv2.putText(img, lab, (a[0] + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, fs, col, th)
    if title:
        tfs = fs
        while (
            tfs > 0.3 and cv2.getTextSize(title, cv2.FONT_HERSHEY_SIMPLEX, tfs, th)[0][0] > img.shape[1] - 12
        ):
            tfs *= 0.9
        cv2.putText(img, title, (6, img.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, tfs, (0, 0, 0), th + 1)
        cv2.putText(img, title, (6, img.shape[0] - 8), cv2.FONT_HERSHEY_SIMPLEX, tfs, (255, 255, 255), th)
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("labels")
    ap.add_argument("--video")
    ap.add_argument("--out", default="check_render")
    ap.add_argument("--times")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--crop")
    ap.add_argument("--grid", type=int, default=0)
    ap.add_argument("--sheet", type=int, default=0)
    a = ap.parse_args()

    with open(a.labels) as handle:
        lab = json.load(handle)
    media = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "media")
    video = a.video or os.path.join(media, lab["clip"])
    stem = os.path.splitext(lab["clip"])[0]
    frames = lab["frames"]
    if a.times:
        want = {round(float(t), 3) for t in a.times.split(",")}
        frames = [f for f in frames if round(f["t_s"], 3) in want]
    by_idx = {f["frame_index"]: f for f in frames}
    crop = [int(v) for v in a.crop.split(",")] if a.crop else None
    os.makedirs(a.out, exist_ok=True)

    cap = cv2.VideoCapture(video)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {video}")
    idx, done, outs = 0, 0, []
    last = max(by_idx) if by_idx else -1
    while idx <= last:
        ok, fr = cap.read()
        if not ok:
            break
        if idx in by_idx:
            f = by_idx[idx]
            title = f"{stem} t={f['t_s']:.1f}s f={idx} n={len(f['persons'])}"
            img = render(fr, f["persons"], a.scale, crop, a.grid, title)
            path = os.path.join(a.out, f"{stem}_t{f['t_s']:05.1f}.png")
            cv2.imwrite(path, img)
            outs.append(img)
            done += 1
        idx += 1
    print(f"wrote {done} images to {a.out}")
    if a.sheet and outs:
        c = a.sheet
        h, w = outs[0].shape[:2]
        outs = [cv2.resize(o, (w, h)) for o in outs]
        while len(outs) % c:
            outs.append(np.zeros_like(outs[0]))
        sheet = np.vstack([np.hstack(outs[i : i + c]) for i in range(0, len(outs), c)])
        cv2.imwrite(os.path.join(a.out, "sheet.png"), sheet)


if __name__ == "__main__":
    main()
