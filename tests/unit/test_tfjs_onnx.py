"""tfjs_onnx: tiny TF.js graph models written here (model.json + a weight shard) converted to ONNX,
run with ONNX Runtime from the converted bytes and compared with numpy versions of the same
graphs; weights dequantized; unsupported ops refused by name."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from posereel.tfjs_onnx import ConversionError, convert, load_weights

# --- builders ---------------------------------------------------------------------------------


def _s(text: str) -> dict[str, str]:
    return {"s": base64.b64encode(text.encode()).decode()}


def _ints(values: list[int]) -> dict[str, Any]:
    return {"list": {"i": [str(v) for v in values]}}


@dataclass
class Graph:
    """A TF.js graph model being written: nodes, and the weights of its Const nodes."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    def input(self, name: str, shape: tuple[int, ...]) -> str:
        dims = [{"size": str(d)} for d in shape]
        self.nodes.append(
            {
                "name": name,
                "op": "Placeholder",
                "attr": {"shape": {"shape": {"dim": dims}}, "dtype": {"type": "DT_FLOAT"}},
            }
        )
        return name

    def const(self, name: str, value: np.ndarray) -> str:
        self.weights[name] = value
        self.nodes.append({"name": name, "op": "Const", "attr": {}})
        return name

    def op(self, name: str, op: str, *inputs: str, **attr: Any) -> str:
        self.nodes.append({"name": name, "op": op, "input": list(inputs), "attr": attr})
        return name

    def output(self, name: str, source: str) -> str:
        self.op(name, "Identity", source)
        self.outputs.append(name)
        return name

    def write(self, root: Path) -> Path:
        """model.json and one weight shard in ``root``; the nodes written in reverse order, as the
        converter must sort them itself."""
        manifest, data = [], b""
        for name, value in self.weights.items():
            dtype = {np.dtype(np.float32): "float32", np.dtype(np.int32): "int32"}[value.dtype]
            manifest.append({"name": name, "shape": list(value.shape), "dtype": dtype})
            data += value.tobytes()
        (root / "group1-shard1of1.bin").write_bytes(data)
        spec = {
            "format": "graph-model",
            "modelTopology": {"node": self.nodes[::-1]},
            "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": manifest}],
            "signature": {"outputs": {f"{o}:0": {"name": f"{o}:0"} for o in self.outputs}},
        }
        path = root / "model.json"
        path.write_text(json.dumps(spec))
        return path


def run_onnx(model: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


# --- numpy references (TF's NHWC semantics) ---------------------------------------------------


def conv2d(x: np.ndarray, kernel: np.ndarray, *, stride: int, pads: tuple[int, int]) -> np.ndarray:
    """TF Conv2D, NHWC input, HWIO kernel; ``pads`` (before, after) on both height and width."""
    x = np.pad(x, ((0, 0), pads, pads, (0, 0)))
    kh, kw, _, k_out = kernel.shape
    n, h, w, _ = x.shape
    oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, k_out), np.float64)
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride : i * stride + kh, j * stride : j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, kernel, axes=([1, 2, 3], [0, 1, 2]))
    return out


def max_pool(x: np.ndarray, *, size: int, stride: int, pads: tuple[int, int]) -> np.ndarray:
    """TF MaxPool, NHWC; padding never wins (it is minus infinity)."""
    x = np.pad(x, ((0, 0), pads, pads, (0, 0)), constant_values=-np.inf)
    n, h, w, c = x.shape
    oh, ow = (h - size) // stride + 1, (w - size) // stride + 1
    out = np.empty((n, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            out[:, i, j] = x[:, i * stride : i * stride + size, j * stride : j * stride + size].max(
                axis=(1, 2)
            )
    return out


def resize_bilinear(x: np.ndarray, size: tuple[int, int], *, half_pixel: bool) -> np.ndarray:
    """TF ResizeBilinear (align_corners False), NHWC."""

    def weights(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scale = in_size / out_size
        pos = np.arange(out_size, dtype=np.float64)
        src = (pos + 0.5) * scale - 0.5 if half_pixel else pos * scale
        low = np.floor(src)
        frac = src - low
        return np.clip(low, 0, in_size - 1).astype(int), np.clip(low + 1, 0, in_size - 1).astype(int), frac

    y0, y1, fy = weights(size[0], x.shape[1])
    x0, x1, fx = weights(size[1], x.shape[2])
    top = x[:, y0][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y0][:, :, x1] * fx[None, None, :, None]
    bottom = x[:, y1][:, :, x0] * (1 - fx)[None, None, :, None] + x[:, y1][:, :, x1] * fx[None, None, :, None]
    return top * (1 - fy)[None, :, None, None] + bottom * fy[None, :, None, None]


def leaky_relu(x: np.ndarray, alpha: float) -> np.ndarray:
    return np.where(x >= 0, x, alpha * x)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


# --- conversion -------------------------------------------------------------------------------


def detector_head(rng: np.random.Generator) -> tuple[Graph, dict[str, np.ndarray]]:
    """input (1, 8, 8, 3) -> Conv2D 3x3 stride 2 SAME -> AddV2 bias -> LeakyRelu 0.1 ->
    ConcatV2 [it, Sigmoid(it)] on channels -> Reshape (1, -1, 8), the shape itself concatenated
    from two constants (a constant subgraph to fold)."""
    g = Graph()
    x = g.input("input", (1, 8, 8, 3))
    kernel = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    bias = rng.normal(size=(4,)).astype(np.float32)
    conv = g.op(
        "head/conv",
        "Conv2D",
        x,
        g.const("head/conv/weights", kernel),
        strides=_ints([1, 2, 2, 1]),
        padding=_s("SAME"),
        data_format=_s("NHWC"),
        dilations=_ints([1, 1, 1, 1]),
    )
    biased = g.op("head/bias", "AddV2", conv, g.const("head/bias/value", bias))
    act = g.op("head/act", "LeakyRelu", biased, alpha={"f": 0.1})
    score = g.op("head/score", "Sigmoid", act)
    both = g.op("head/concat", "ConcatV2", act, score, g.const("head/concat/axis", np.array(-1, np.int32)))
    shape = g.op(
        "head/shape",
        "ConcatV2",
        g.const("head/shape/batch", np.array([1], np.int32)),
        g.const("head/shape/rest", np.array([-1, 8], np.int32)),
        g.const("head/shape/axis", np.array(0, np.int32)),
    )
    flat = g.op("head/flat", "Reshape", both, shape)
    g.output("Identity", flat)
    return g, {"kernel": kernel, "bias": bias}


def test_a_conv_head_converts_to_the_same_numbers(tmp_path):
    # Given a TF.js graph: convolution with a bias, LeakyRelu, Sigmoid, concatenation, reshape
    rng = np.random.default_rng(7)
    graph, w = detector_head(rng)
    x = rng.normal(size=(1, 8, 8, 3)).astype(np.float32)
    # When it is converted and run
    model = convert(graph.write(tmp_path))
    got = run_onnx(model, {"input": x})
    # Then its one output has TF's static shape and TF's numbers (SAME padding at stride 2 on 8
    # pads 0 before and 1 after)
    assert [o.name for o in model.graph.output] == ["Identity"]
    act = leaky_relu(conv2d(x, w["kernel"], stride=2, pads=(0, 1)) + w["bias"], 0.1)
    expected = np.concatenate([act, sigmoid(act)], axis=-1).reshape(1, -1, 8)
    assert got["Identity"].shape == (1, 16, 8)
    np.testing.assert_allclose(got["Identity"], expected, rtol=1e-4, atol=1e-5)
    dims = [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [1, 16, 8]


@pytest.mark.parametrize("half_pixel", [True, False])
def test_pad_pool_resize_and_split_convert_to_the_same_numbers(tmp_path, half_pixel):
    # Given: Pad (top and left), MaxPool 3x3 stride 2 SAME, ResizeBilinear to 8 x 8, SplitV into
    # 1 + 3 channels, Transpose of one part; two outputs
    rng = np.random.default_rng(11)
    g = Graph()
    x = g.input("image", (1, 6, 6, 4))
    padded = g.op("pad", "Pad", x, g.const("pad/p", np.array([[0, 0], [1, 0], [1, 0], [0, 0]], np.int32)))
    pooled = g.op(
        "pool", "MaxPool", padded, ksize=_ints([1, 3, 3, 1]), strides=_ints([1, 2, 2, 1]), padding=_s("SAME")
    )
    resized = g.op(
        "up",
        "ResizeBilinear",
        pooled,
        g.const("up/size", np.array([8, 8], np.int32)),
        align_corners={"b": False},
        half_pixel_centers={"b": half_pixel},
    )
    split = g.op(
        "split",
        "SplitV",
        resized,
        g.const("split/sizes", np.array([1, 3], np.int32)),
        g.const("split/axis", np.array(3, np.int32)),
    )
    turned = g.op("turn", "Transpose", "split:1", g.const("turn/perm", np.array([0, 3, 1, 2], np.int32)))
    g.output("Identity", split)  # split:0
    g.output("Identity_1", turned)
    image = rng.normal(size=(1, 6, 6, 4)).astype(np.float32)
    # When converted and run
    got = run_onnx(convert(g.write(tmp_path)), {"image": image})
    # Then both outputs match TF (negative inputs: a pool's padding must never win)
    padded_ref = np.pad(image, ((0, 0), (1, 0), (1, 0), (0, 0)))
    pooled_ref = max_pool(padded_ref, size=3, stride=2, pads=(1, 1))  # SAME on 7: 1 before, 1 after
    up = resize_bilinear(pooled_ref, (8, 8), half_pixel=half_pixel)
    np.testing.assert_allclose(got["Identity"], up[..., :1], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        got["Identity_1"], np.transpose(up[..., 1:], (0, 3, 1, 2)), rtol=1e-4, atol=1e-5
    )


def test_output_names_can_be_chosen(tmp_path):
    graph, _ = detector_head(np.random.default_rng(0))
    graph.op("head/other", "Sigmoid", "head/flat")
    model = convert(graph.write(tmp_path), output_names=["head/other"])
    assert [o.name for o in model.graph.output] == ["head/other"]


# --- refusals ---------------------------------------------------------------------------------


def test_an_unsupported_op_is_refused_by_name(tmp_path):
    g = Graph()
    x = g.input("input", (1, 8, 8, 3))
    dw = g.op(
        "block/depthwise",
        "DepthwiseConv2dNative",
        x,
        g.const("block/depthwise/w", np.ones((3, 3, 3, 1), np.float32)),
        strides=_ints([1, 1, 1, 1]),
        padding=_s("SAME"),
    )
    g.output("Identity", dw)
    with pytest.raises(ConversionError, match="block/depthwise: op DepthwiseConv2dNative is not supported"):
        convert(g.write(tmp_path))


def test_an_unsupported_op_on_constants_is_refused_by_name(tmp_path):
    g = Graph()
    x = g.input("input", (1, 4))
    scale = g.op("scale", "Mul", g.const("a", np.ones(4, np.float32)), g.const("b", np.ones(4, np.float32)))
    g.output("Identity", g.op("add", "AddV2", x, scale))
    with pytest.raises(ConversionError, match="scale: cannot fold constant op Mul"):
        convert(g.write(tmp_path))


def test_a_constant_without_a_weight_is_refused(tmp_path):
    g = Graph()
    x = g.input("input", (1, 4))
    g.nodes.append({"name": "orphan", "op": "Const", "attr": {}})
    g.output("Identity", g.op("add", "AddV2", x, "orphan"))
    with pytest.raises(ConversionError, match="orphan: a constant without a weight"):
        convert(g.write(tmp_path))


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        ({"data_format": _s("NCHW")}, "only NHWC Conv2D"),
        ({"padding": _s("EXPLICIT")}, "padding EXPLICIT is not supported"),
    ],
)
def test_a_convolution_in_an_unsupported_layout_is_refused(tmp_path, attr, message):
    g = Graph()
    x = g.input("input", (1, 8, 8, 3))
    attrs = {"strides": _ints([1, 1, 1, 1]), "padding": _s("SAME")} | attr
    conv = g.op("conv", "Conv2D", x, g.const("conv/w", np.ones((3, 3, 3, 2), np.float32)), **attrs)
    g.output("Identity", conv)
    with pytest.raises(ConversionError, match=message):
        convert(g.write(tmp_path))


def test_resizing_with_aligned_corners_is_refused(tmp_path):
    g = Graph()
    x = g.input("input", (1, 4, 4, 1))
    up = g.op(
        "up", "ResizeBilinear", x, g.const("up/size", np.array([8, 8], np.int32)), align_corners={"b": True}
    )
    g.output("Identity", up)
    with pytest.raises(ConversionError, match="align_corners"):
        convert(g.write(tmp_path))


# --- weights ----------------------------------------------------------------------------------


def test_weights_are_read_in_manifest_order_across_shards(tmp_path):
    # Given three weights of two dtypes written in one stream and cut into two shards mid-weight
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([7, -8], np.int32)
    c = np.array(2.5, np.float32)  # a scalar
    data = a.tobytes() + b.tobytes() + c.tobytes()
    (tmp_path / "s1.bin").write_bytes(data[:10])
    (tmp_path / "s2.bin").write_bytes(data[10:])
    manifest = [
        {
            "paths": ["s1.bin", "s2.bin"],
            "weights": [
                {"name": "a", "shape": [2, 3], "dtype": "float32"},
                {"name": "b", "shape": [2], "dtype": "int32"},
                {"name": "c", "shape": [], "dtype": "float32"},
            ],
        }
    ]
    weights = load_weights(manifest, tmp_path)
    np.testing.assert_array_equal(weights["a"], a)
    np.testing.assert_array_equal(weights["b"], b)
    assert weights["b"].dtype == np.int32
    assert weights["c"].shape == () and float(weights["c"]) == 2.5


def test_float16_weights_are_dequantized_to_float32(tmp_path):
    values = np.array([0.5, -1.25, 3.0], np.float16)
    after = np.array([9.0], np.float32)  # the offset after a float16 weight counts 2 bytes each
    (tmp_path / "w.bin").write_bytes(values.tobytes() + after.tobytes())
    manifest = [
        {
            "paths": ["w.bin"],
            "weights": [
                {"name": "half", "shape": [3], "dtype": "float32", "quantization": {"dtype": "float16"}},
                {"name": "after", "shape": [1], "dtype": "float32"},
            ],
        }
    ]
    weights = load_weights(manifest, tmp_path)
    assert weights["half"].dtype == np.float32
    np.testing.assert_array_equal(weights["half"], [0.5, -1.25, 3.0])
    np.testing.assert_array_equal(weights["after"], [9.0])


def test_uint8_weights_are_scaled_from_their_minimum(tmp_path):
    (tmp_path / "w.bin").write_bytes(bytes([0, 1, 255]))
    manifest = [
        {
            "paths": ["w.bin"],
            "weights": [
                {
                    "name": "q",
                    "shape": [3],
                    "dtype": "float32",
                    "quantization": {"dtype": "uint8", "scale": 0.5, "min": -2.0},
                }
            ],
        }
    ]
    q = load_weights(manifest, tmp_path)["q"]
    assert q.dtype == np.float32
    np.testing.assert_allclose(q, [-2.0, -1.5, 125.5])


# --- known defects ----------------------------------------------------------------------------


def constant_first(op: str) -> Graph:
    """input (1, 4) -> ``op`` with a constant as its first operand and the input second."""
    g = Graph()
    x = g.input("input", (1, 4))
    c = g.const("c", np.array([[10.0, 20.0, 30.0, 40.0]], np.float32))
    if op == "AddV2":
        g.output("Identity", g.op("mix", "AddV2", c, x))
    else:
        g.output("Identity", g.op("mix", "ConcatV2", c, x, g.const("axis", np.array(1, np.int32))))
    return g


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        ("AddV2", [[10.0, 21.0, 32.0, 43.0]]),
        ("ConcatV2", [[10.0, 20.0, 30.0, 40.0, 0.0, 1.0, 2.0, 3.0]]),
    ],
)
def test_a_supported_op_with_a_constant_first_operand_converts_or_is_refused_by_name(tmp_path, op, expected):
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    try:
        model = convert(constant_first(op).write(tmp_path))
    except ConversionError as exc:  # refusing it, by name, is fine too
        assert "mix" in str(exc)
        return
    np.testing.assert_allclose(run_onnx(model, {"input": x})["Identity"], expected)


def test_a_folded_cast_changes_the_constant_type(tmp_path):
    # Given input + Cast(int32 constant -> float)
    g = Graph()
    x = g.input("input", (1, 4))
    cast = g.op(
        "cast",
        "Cast",
        g.const("c", np.array([1, 2, 3, 4], np.int32)),
        SrcT={"type": "DT_INT32"},
        DstT={"type": "DT_FLOAT"},
    )
    g.output("Identity", g.op("add", "AddV2", x, cast))
    # When converted and run
    got = run_onnx(convert(g.write(tmp_path)), {"input": np.zeros((1, 4), np.float32)})
    # Then it adds the cast constant
    np.testing.assert_allclose(got["Identity"], [[1.0, 2.0, 3.0, 4.0]])


def test_splitv_with_a_size_of_minus_one_takes_the_rest_of_the_axis(tmp_path):
    g = Graph()
    x = g.input("input", (1, 4))
    g.op(
        "split",
        "SplitV",
        x,
        g.const("sizes", np.array([1, -1], np.int32)),
        g.const("axis", np.array(1, np.int32)),
    )
    g.output("Identity", "split:1")
    got = run_onnx(convert(g.write(tmp_path)), {"input": np.arange(4, dtype=np.float32).reshape(1, 4)})
    np.testing.assert_allclose(got["Identity"], [[1.0, 2.0, 3.0]])
