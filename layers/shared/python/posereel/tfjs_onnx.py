"""Convert a TensorFlow.js graph model (model.json + weight shards) into an ONNX model, for the
person detector, which is published in TF.js form only (posereel.modelstore fetches it).

Constant subgraphs (shapes, paddings, split sizes: everything that does not depend on the input)
are folded with numpy; the rest becomes ONNX nodes, NHWC ops wrapped in transposes (ONNX Runtime
removes the redundant pairs when it loads the model). Only the ops the shipped models use are
supported; any other one is refused by name, never guessed. Used at fetch time only (the ``onnx``
package builds the model); the workers load the ONNX file with ONNX Runtime.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "int64": np.int64}
_QUANTIZED = {"float16": np.float16, "uint8": np.uint8, "uint16": np.uint16}
OPSET = 17


class ConversionError(ValueError):
    """The TF.js model uses something this converter does not support."""


def load_weights(manifest: list[dict[str, Any]], root: Path) -> dict[str, np.ndarray]:
    """Every weight of a TF.js model by name, dequantized (float16 -> float32)."""
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        data = b"".join((root / path).read_bytes() for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quantization = spec.get("quantization")
            value: np.ndarray
            if quantization:
                stored = np.dtype(_QUANTIZED[quantization["dtype"]])
                raw = np.frombuffer(data, dtype=stored, count=count, offset=offset)
                if "scale" in quantization:
                    raw = raw * quantization["scale"] + quantization.get("min", 0.0)
                value = raw.astype(_DTYPES[spec["dtype"]])
            else:
                stored = np.dtype(_DTYPES[spec["dtype"]])
                value = np.frombuffer(data, dtype=stored, count=count, offset=offset).copy()
            offset += count * stored.itemsize
            weights[spec["name"]] = value.reshape(shape)
    return weights


def _attr(node: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """A node attribute in TF's JSON protobuf form, as a Python value."""
    value = node.get("attr", {}).get(name)
    if value is None:
        return default
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "i" in value:
        return int(value["i"])
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "list" in value:
        return [int(i) for i in value["list"].get("i", [])]
    if "type" in value:
        return value["type"]
    return default


def _split_ref(ref: str) -> tuple[str, int]:
    name, _, index = ref.partition(":")
    return name, int(index) if index else 0


# numpy versions of the ops that appear in constant subgraphs: (node, inputs) -> outputs
def _sparse_to_dense(node: Mapping[str, Any], xs: list[np.ndarray]) -> list[np.ndarray]:
    indices, shape, values, default = xs
    out = np.full(shape.astype(np.int64), default, dtype=values.dtype)
    indices = indices.reshape(len(values), -1) if values.size else indices.reshape(0, out.ndim)
    for index, value in zip(indices, values.reshape(-1), strict=True):
        out[tuple(index)] = value
    return [out]


def _split_sizes(sizes: Any, length: int) -> np.ndarray:
    """SplitV's sizes with TF's one -1 ("the rest of the axis") resolved."""
    sizes = np.asarray(sizes, dtype=np.int64).copy()
    rest = np.flatnonzero(sizes == -1)
    if rest.size > 1:
        raise ConversionError("SplitV with more than one size of -1")
    if rest.size:
        sizes[rest[0]] = length - (sizes.sum() + 1)
    return sizes


def _split_v(node: Mapping[str, Any], xs: list[np.ndarray]) -> list[np.ndarray]:
    x, sizes, axis = xs
    sizes = _split_sizes(sizes, x.shape[int(axis)])
    return list(np.split(x, np.cumsum(sizes)[:-1], axis=int(axis)))


# TF dtypes a folded Cast can produce.
_TF_DTYPES = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int64, "DT_BOOL": np.bool_}


def _cast(node: Mapping[str, Any], xs: list[np.ndarray]) -> list[np.ndarray]:
    target = _attr(node, "DstT", "DT_FLOAT")
    if target not in _TF_DTYPES:
        raise ConversionError(f"{node['name']}: cannot fold a Cast to {target}")
    return [np.asarray(xs[0]).astype(_TF_DTYPES[target])]


_FOLD: dict[str, Callable[[Mapping[str, Any], list[np.ndarray]], list[np.ndarray]]] = {
    "Identity": lambda n, xs: [xs[0]],
    "Transpose": lambda n, xs: [np.transpose(xs[0], xs[1])],
    "Add": lambda n, xs: [xs[0] + xs[1]],
    "AddV2": lambda n, xs: [xs[0] + xs[1]],
    "ConcatV2": lambda n, xs: [np.concatenate(xs[:-1], axis=int(xs[-1]))],
    "Reshape": lambda n, xs: [xs[0].reshape(xs[1].astype(np.int64))],
    "Cast": _cast,
    "SparseToDense": _sparse_to_dense,
    "SplitV": _split_v,
}
_NCHW = [0, 3, 1, 2]
_NHWC = [0, 2, 3, 1]


class _Builder:
    """ONNX nodes and initializers, with the static shape of every tensor."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint.replace('/', '_')}__{self._count}"

    def const(self, value: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.asarray(value), name))
        return name

    def add(self, op: str, inputs: list[str], shape: tuple[int, ...], hint: str, **attrs: Any) -> str:
        out = self.name(hint)
        self.nodes.append(self.helper.make_node(op, inputs, [out], **attrs))
        self.shapes[out] = shape
        return out

    def transpose(self, x: str, perm: list[int], hint: str) -> str:
        shape = tuple(self.shapes[x][p] for p in perm)
        return self.add("Transpose", [x], shape, hint, perm=perm)


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    return total // 2, total - total // 2


def _conv_like(
    b: _Builder, node: Mapping[str, Any], x: str, kernel_hw: tuple[int, int], op: str, **extra: Any
) -> tuple[str, tuple[int, int, int, int], dict[str, Any]]:
    """A convolution's or pooling's ONNX op, its NHWC output shape and its attributes."""
    if _attr(node, "data_format", "NHWC") != "NHWC":
        raise ConversionError(f"{node['name']}: only NHWC {node['op']} is supported")
    strides = _attr(node, "strides", [1, 1, 1, 1])[1:3]
    dilations = _attr(node, "dilations", [1, 1, 1, 1])[1:3] if op == "Conv" else [1, 1]
    n, h, w, c = b.shapes[x]
    padding = _attr(node, "padding", "VALID")
    if padding == "SAME":
        (t, bt), (lf, rt) = (
            _same_pads(h, kernel_hw[0], strides[0], dilations[0]),
            _same_pads(w, kernel_hw[1], strides[1], dilations[1]),
        )
    elif padding == "VALID":
        t = bt = lf = rt = 0
    else:
        raise ConversionError(f"{node['name']}: padding {padding} is not supported")
    oh = (h + t + bt - dilations[0] * (kernel_hw[0] - 1) - 1) // strides[0] + 1
    ow = (w + lf + rt - dilations[1] * (kernel_hw[1] - 1) - 1) // strides[1] + 1
    attrs = {"strides": strides, "pads": [t, lf, bt, rt], **extra}
    if op == "Conv":
        attrs["dilations"] = dilations
    else:
        attrs["kernel_shape"] = list(kernel_hw)
    return op, (n, oh, ow, c), attrs


def convert(model_json: Path, *, output_names: list[str] | None = None) -> Any:
    """The ONNX ModelProto of the TF.js graph model at ``model_json`` (weights beside it)."""
    from onnx import TensorProto, checker, helper

    spec = json.loads(model_json.read_text())
    weights = load_weights(spec["weightsManifest"], model_json.parent)
    nodes = {n["name"]: n for n in spec["modelTopology"]["node"]}
    consts: dict[str, list[np.ndarray]] = {name: [value] for name, value in weights.items()}
    tensors: dict[str, list[str]] = {}
    b = _Builder()
    graph_inputs = []
    order = _topological(nodes)
    for name in order:
        node = nodes[name]
        op = node["op"]
        refs = [r for r in node.get("input", []) if not r.startswith("^")]
        if op == "Const":
            if name not in consts:
                raise ConversionError(f"{name}: a constant without a weight")
            continue
        if op == "Placeholder":
            shape = tuple(int(d.get("size", -1)) for d in node["attr"]["shape"]["shape"]["dim"])
            graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape)))
            tensors[name] = [name]
            b.shapes[name] = shape
            continue
        parsed = [_split_ref(r) for r in refs]
        if all(src in consts for src, _ in parsed):
            if op not in _FOLD:
                raise ConversionError(f"{name}: cannot fold constant op {op}")
            consts[name] = _FOLD[op](node, [consts[src][i] for src, i in parsed])
            continue
        values = [consts[src][i] if src in consts else None for src, i in parsed]
        inputs = [tensors[src][i] if src in tensors else "" for src, i in parsed]
        tensors[name] = _emit(b, node, inputs, values)
    names = output_names or sorted(ref.split(":")[0] for ref in spec["signature"]["outputs"])
    outputs = []
    for out in names:
        tensor = tensors[out][0]
        b.nodes.append(helper.make_node("Identity", [tensor], [out]))
        outputs.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, list(b.shapes[tensor])))
    graph = helper.make_graph(b.nodes, "tfjs", graph_inputs, outputs, initializer=b.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="posereel")
    model.ir_version = 8
    checker.check_model(model)
    return model


def _topological(nodes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}
    for root in sorted(nodes):
        stack = [(root, False)]
        while stack:
            name, done = stack.pop()
            if done:
                state[name] = 2
                order.append(name)
                continue
            if state.get(name):
                continue
            state[name] = 1
            stack.append((name, True))
            for ref in nodes[name].get("input", []):
                src = _split_ref(ref.lstrip("^"))[0]
                if src in nodes and not state.get(src):
                    stack.append((src, False))
    return order


def _emit(b: _Builder, node: Mapping[str, Any], inputs: list[str], values: list[Any]) -> list[str]:
    """ONNX nodes for one TF node with at least one computed input; returns its output tensors.
    Add and ConcatV2 take their computed and constant inputs in any order; every other op needs
    its first input computed (its data) and the rest constant (its parameters)."""
    op, name = node["op"], node["name"]
    if op in ("Add", "AddV2"):
        operands = [
            i or b.const(np.asarray(v, dtype=np.float32), name) for i, v in zip(inputs, values, strict=True)
        ]
        shape = max((b.shapes[i] for i in inputs if i), key=len)
        return [b.add("Add", operands, shape, name)]
    if op == "ConcatV2":
        axis = int(values[-1])
        parts = [i or b.const(v, name) for i, v in zip(inputs[:-1], values[:-1], strict=True)]
        shape = next(b.shapes[i] for i in inputs[:-1] if i)
        axis = axis % len(shape)
        total = sum(b.shapes.get(p, np.shape(v))[axis] for p, v in zip(parts, values[:-1], strict=True))
        out = tuple(total if k == axis else s for k, s in enumerate(shape))
        return [b.add("Concat", parts, out, name, axis=axis)]
    x = inputs[0]
    if not x or any(inputs[1:]):
        raise ConversionError(f"{name}: {op} with a mix of computed and constant inputs is not supported")
    shape = b.shapes.get(x, ())
    if op in ("Identity",):
        return [b.add("Identity", [x], shape, name)]
    if op == "LeakyRelu":
        return [b.add("LeakyRelu", [x], shape, name, alpha=_attr(node, "alpha", 0.2))]
    if op == "Sigmoid":
        return [b.add("Sigmoid", [x], shape, name)]
    if op == "Transpose":
        perm = [int(p) for p in values[1]]
        return [b.transpose(x, perm, name)]
    if op in ("Pad", "PadV2"):
        pads = np.asarray(values[1], dtype=np.int64)
        padded = tuple(s + int(a) + int(z) for s, (a, z) in zip(shape, pads, strict=True))
        args = [x, b.const(np.concatenate([pads[:, 0], pads[:, 1]]), name)]
        if op == "PadV2":
            args.append(b.const(np.asarray(values[2], dtype=np.float32).reshape(()), name))
        return [b.add("Pad", args, padded, name)]
    if op == "Reshape":
        target = np.asarray(values[1], dtype=np.int64)
        size = int(np.prod(shape))
        known = int(np.prod([d for d in target if d != -1]))
        out = tuple(int(d) if d != -1 else size // known for d in target)
        return [b.add("Reshape", [x, b.const(target, name)], out, name)]
    if op == "SplitV":
        axis = int(values[2]) % len(shape)
        sizes = _split_sizes(values[1], shape[axis])
        outs = [b.name(f"{name}_{k}") for k in range(len(sizes))]
        b.nodes.append(b.helper.make_node("Split", [x, b.const(sizes, name)], outs, axis=axis))
        for part, size in zip(outs, sizes, strict=True):
            b.shapes[part] = tuple(int(size) if k == axis else d for k, d in enumerate(shape))
        return outs
    if op == "Conv2D":
        kernel = np.asarray(values[1], dtype=np.float32)  # HWIO
        kh, kw, k_in, k_out = kernel.shape
        group = shape[3] // k_in
        conv, (n, oh, ow, _), attrs = _conv_like(b, node, x, (kh, kw), "Conv", group=group)
        nchw = b.transpose(x, _NCHW, name)
        w = b.const(np.transpose(kernel, (3, 2, 0, 1)), name)
        y = b.add(conv, [nchw, w], (n, k_out, oh, ow), name, **attrs)
        return [b.transpose(y, _NHWC, name)]
    if op == "MaxPool":
        ksize = _attr(node, "ksize")[1:3]
        pool, (n, oh, ow, c), attrs = _conv_like(b, node, x, (ksize[0], ksize[1]), "MaxPool")
        nchw = b.transpose(x, _NCHW, name)
        y = b.add(pool, [nchw], (n, c, oh, ow), name, **attrs)
        return [b.transpose(y, _NHWC, name)]
    if op == "ResizeBilinear":
        if _attr(node, "align_corners", False):
            raise ConversionError(f"{name}: align_corners resizing is not supported")
        out_h, out_w = (int(v) for v in np.asarray(values[1]))
        mode = "half_pixel" if _attr(node, "half_pixel_centers", False) else "asymmetric"
        n, _, _, c = shape
        nchw = b.transpose(x, _NCHW, name)
        resized = b.const(np.asarray([n, c, out_h, out_w], dtype=np.int64), name)
        y = b.add(
            "Resize",
            [nchw, "", "", resized],
            (n, c, out_h, out_w),
            name,
            mode="linear",
            coordinate_transformation_mode=mode,
        )
        return [b.transpose(y, _NHWC, name)]
    raise ConversionError(f"{name}: op {op} is not supported")
