"""detection: the detector's input (letterbox), the decoding of NanoDet's raw outputs into boxes in
frame pixels, and the box overlap and suppression it uses. No model: the raw outputs are built by
hand, one hot cell at a time."""

from __future__ import annotations

import numpy as np
import pytest

from posereel.detection import BINS, INPUT_SIZE, PERSON, STRIDES, Detection, box_iou, decode, letterbox, nms

MEAN_BGR = np.array([103.53, 116.28, 123.675])
STD_BGR = np.array([57.375, 57.12, 58.395])
# NanoDet's output names per stride: (class scores, box distances).
OUTPUTS = {8: ("Identity", "Identity_3"), 16: ("Identity_1", "Identity_4"), 32: ("Identity_2", "Identity_5")}


# --- builders ---------------------------------------------------------------------------------


def raw_outputs() -> dict[str, np.ndarray]:
    """NanoDet's outputs for an empty picture: every score 0, every distance distribution flat."""
    out = {}
    for stride, (cls_name, reg_name) in OUTPUTS.items():
        cells = (INPUT_SIZE // stride) ** 2
        out[cls_name] = np.zeros((1, cells, 80), np.float32)
        out[reg_name] = np.zeros((1, cells, 4 * BINS), np.float32)
    return out


def hot_cell(
    outputs: dict[str, np.ndarray],
    *,
    stride: int,
    row: int,
    col: int,
    bins: tuple[float, float, float, float],
    score: float,
    cls: int = PERSON,
) -> tuple[float, float]:
    """Make the cell (row, col) of ``stride``'s grid see class ``cls`` with ``score``, its distance
    to each side (left, top, right, bottom) peaked on ``bins`` (a half bin: evenly between two);
    returns the cell's centre in input pixels."""
    cls_name, reg_name = OUTPUTS[stride]
    cell = row * (INPUT_SIZE // stride) + col
    outputs[cls_name][0, cell, cls] = score
    logits = np.full((4, BINS), -50.0, np.float32)
    for side, b in enumerate(bins):
        low = int(np.floor(b))
        logits[side, low] = 50.0
        if b != low:  # two equal logits: the expected distance is their mean
            logits[side, low + 1] = 50.0
    outputs[reg_name][0, cell] = logits.reshape(-1)
    return (col + 0.5) * stride, (row + 0.5) * stride


def run_decode(outputs: dict[str, np.ndarray], **overrides: float) -> list[Detection]:
    knobs = {"scale": 0.5, "width": 832, "height": 468, "min_score": 0.35, "nms_iou": 0.5} | overrides
    return decode(outputs, **knobs)  # type: ignore[arg-type]


# --- letterbox --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width", "scale", "content_hw"),
    [
        (360, 640, 416 / 640, (234, 416)),  # landscape: padding below
        (640, 360, 416 / 640, (416, 234)),  # portrait: padding on the right
        (208, 208, 2.0, (416, 416)),  # small square: scaled up, no padding
    ],
)
def test_letterbox_fits_the_frame_top_left_and_pads_with_zero(height, width, scale, content_hw):
    # Given a frame of one colour (RGB)
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = (200, 100, 50)
    # When it becomes the detector's input
    tensor, got_scale = letterbox(rgb)
    # Then it is (1, 3, 416, 416) float32, scaled by the longer side
    assert tensor.shape == (1, 3, INPUT_SIZE, INPUT_SIZE)
    assert tensor.dtype == np.float32
    assert got_scale == pytest.approx(scale)
    # And the picture sits top-left, each channel normalised in BGR order
    h, w = content_hw
    expected = (np.array([50, 100, 200]) - MEAN_BGR) / STD_BGR
    content = tensor[0, :, :h, :w]
    np.testing.assert_allclose(content, np.broadcast_to(expected[:, None, None], content.shape), atol=1e-4)
    # And the rest is the mean colour, which is zero once normalised
    padding = tensor[0].copy()
    padding[:, :h, :w] = 0
    assert not padding.any()


def test_letterbox_keeps_the_place_of_a_pixel_and_its_channel_order():
    # Given a black 416 x 416 frame with a pure red block and a pure blue block
    rgb = np.zeros((416, 416, 3), np.uint8)
    rgb[100:110, 300:310] = (255, 0, 0)
    rgb[200:210, 50:60] = (0, 0, 255)
    # When it becomes the detector's input (scale 1)
    tensor, scale = letterbox(rgb)
    assert scale == 1.0
    # Then the red pixel is at the same place, red in the last (BGR) channel
    red = tensor[0, :, 105, 305]
    np.testing.assert_allclose(red, (np.array([0, 0, 255]) - MEAN_BGR) / STD_BGR, atol=1e-4)
    # And the blue pixel has blue in the first channel
    blue = tensor[0, :, 205, 55]
    np.testing.assert_allclose(blue, (np.array([255, 0, 0]) - MEAN_BGR) / STD_BGR, atol=1e-4)
    # And a black pixel is minus the mean over the deviation
    np.testing.assert_allclose(tensor[0, :, 0, 0], -MEAN_BGR / STD_BGR, atol=1e-4)


# --- decode -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stride", STRIDES)
def test_decode_places_a_hot_cell_box_in_frame_pixels(stride):
    # Given one cell sure of a person, its distances peaked on (2, 3, 1.5, 4) bins
    outputs = raw_outputs()
    cx, cy = hot_cell(outputs, stride=stride, row=4, col=5, bins=(2, 3, 1.5, 4), score=0.8)
    # When the outputs are decoded for a frame scaled by 0.5 into the input
    found = run_decode(outputs, scale=0.5, width=2000, height=2000)
    # Then one person: the cell centre minus/plus the distances (bins x stride), over the scale
    assert len(found) == 1
    expected = np.array([cx - 2 * stride, cy - 3 * stride, cx + 1.5 * stride, cy + 4 * stride]) / 0.5
    np.testing.assert_allclose(found[0].box, expected, atol=1e-3)
    assert found[0].score == pytest.approx(0.8)


@pytest.mark.parametrize(("score", "found"), [(0.34, 0), (0.35, 1), (0.9, 1)])
def test_decode_keeps_people_scored_at_least_min_score(score, found):
    outputs = raw_outputs()
    hot_cell(outputs, stride=16, row=10, col=10, bins=(2, 2, 2, 2), score=score)
    assert len(run_decode(outputs, min_score=0.35)) == found


def test_decode_ignores_other_classes():
    # Given a cell sure of a bicycle (COCO class 1), not of a person
    outputs = raw_outputs()
    hot_cell(outputs, stride=16, row=10, col=10, bins=(2, 2, 2, 2), score=0.95, cls=1)
    # Then nobody is found
    assert run_decode(outputs) == []


def test_decode_of_an_empty_picture_is_empty():
    assert run_decode(raw_outputs()) == []


def test_decode_clips_boxes_to_the_frame():
    # Given a person at the top-left corner cell whose box reaches past the left and top edges,
    # and one at the bottom-right whose box reaches past the frame's right and bottom
    outputs = raw_outputs()
    hot_cell(outputs, stride=32, row=0, col=0, bins=(10, 10, 2, 3), score=0.9)
    hot_cell(outputs, stride=32, row=12, col=12, bins=(1, 1, 10, 10), score=0.8)
    # When decoded for a 400 x 420 frame at scale 1
    found = run_decode(outputs, scale=1.0, width=400, height=420)
    # Then every box lies within the frame
    assert [d.box for d in found] == [
        pytest.approx((0.0, 0.0, 16 + 64, 16 + 96)),
        pytest.approx((400 - 32, 400 - 32, 400, 420)),
    ]


def test_decode_drops_a_duplicate_of_a_better_box_and_orders_best_first():
    # Given two neighbouring cells describing the same box (the second less sure), and a third
    # person elsewhere, scored in between
    outputs = raw_outputs()
    hot_cell(outputs, stride=8, row=20, col=20, bins=(4, 5, 4, 5), score=0.7)
    hot_cell(outputs, stride=8, row=20, col=21, bins=(5, 5, 3, 5), score=0.6)  # 8 px right, same box
    hot_cell(outputs, stride=16, row=3, col=3, bins=(2, 2, 2, 2), score=0.65)
    # When decoded
    found = run_decode(outputs, scale=1.0, width=416, height=416)
    # Then the duplicate is gone and the rest is best first
    assert [d.score for d in found] == pytest.approx([0.7, 0.65])
    assert found[0].box == pytest.approx((164 - 32, 164 - 40, 164 + 32, 164 + 40))


def test_decode_keeps_two_people_side_by_side():
    # Given two cells with boxes overlapping less than the NMS threshold
    outputs = raw_outputs()
    hot_cell(outputs, stride=8, row=20, col=20, bins=(2, 5, 2, 5), score=0.7)
    hot_cell(outputs, stride=8, row=20, col=23, bins=(2, 5, 2, 5), score=0.6)  # 24 px right: IoU 1/7
    # Then both are found
    assert len(run_decode(outputs, scale=1.0, width=416, height=416, nms_iou=0.5)) == 2


# --- box_iou and nms --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("other", "iou"),
    [
        ((0, 0, 10, 10), 1.0),  # the same box
        ((5, 0, 15, 10), 50 / 150),  # half of it shifted right
        ((2, 2, 8, 8), 36 / 100),  # inside it
        ((10, 0, 20, 10), 0.0),  # touching edges
        ((20, 20, 30, 30), 0.0),  # apart
        ((3, 3, 3, 3), 0.0),  # a point inside it
    ],
)
def test_box_iou(other, iou):
    box = np.array([0, 0, 10, 10], float)
    got = box_iou(box, np.array([other], float))
    assert got.shape == (1,)
    assert got[0] == pytest.approx(iou)


def test_box_iou_of_degenerate_boxes_is_zero_not_nan():
    with np.errstate(all="raise"):
        got = box_iou(np.array([1.0, 1.0, 1.0, 1.0]), np.array([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 5.0]]))
    assert got.tolist() == [0.0, 0.0]


def test_nms_suppresses_overlaps_above_the_threshold_best_first():
    boxes = np.array(
        [
            [0, 0, 10, 10],  # 0: overlaps 1 at 0.9
            [0, 0, 10, 9],  # 1: the best
            [50, 50, 60, 60],  # 2: alone
            [1, 0, 11, 10],  # 3: overlaps 1 at 0.74, 0 at 0.82
        ],
        float,
    )
    scores = np.array([0.5, 0.9, 0.3, 0.4])
    assert nms(boxes, scores, iou=0.5) == [1, 2]
    assert nms(boxes, scores, iou=0.8) == [1, 3, 2]
    assert nms(boxes, scores, iou=0.9) == [1, 0, 3, 2]


def test_nms_keeps_a_box_overlapping_exactly_at_the_threshold():
    # Given two boxes with IoU exactly 0.5 (overlap 2, union 4)
    boxes = np.array([[0, 0, 3, 1], [1, 0, 4, 1]], float)
    assert box_iou(boxes[0], boxes[1:])[0] == 0.5
    # Then suppression at 0.5 keeps both (only a larger overlap suppresses)
    assert nms(boxes, np.array([0.9, 0.8]), iou=0.5) == [0, 1]


def test_nms_breaks_score_ties_by_input_order():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float)
    assert nms(boxes, np.array([0.5, 0.5, 0.5]), iou=0.5) == [0]


def test_nms_of_nothing_is_nothing():
    assert nms(np.zeros((0, 4)), np.zeros(0), iou=0.5) == []
