"""TensorFlow.js graph models run on TensorFlow, without the tensorflowjs package.

``model.json`` holds a GraphDef in protobuf's JSON mapping and a manifest of the weights, which
lie in ``.bin`` shards, possibly quantized (float16, or uint8/uint16 with scale and min). The
weights become the values of their Const nodes; the TF.js-only fused convolutions are expanded
into the standard ops they stand for.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError

_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_, "uint8": np.uint8, "float16": np.float16,
           "uint16": np.uint16, "int64": np.int64}
_FUSED = {"_FusedConv2D": "Conv2D", "FusedDepthwiseConv2dNative": "DepthwiseConv2dNative"}
_ACTIVATIONS = {"Relu", "Relu6", "Elu", "Sigmoid", "Tanh", "LeakyRelu"}


class TfjsGraphModel:
    """A loaded graph model: ``model(inputs) -> {output name: array}``."""

    def __init__(self, model_json: str | Path):
        import tensorflow as tf

        _single_threaded(tf)
        path = Path(model_json)
        try:
            spec = json.loads(path.read_text())
            graph_def = _graph_def(spec, path.parent)
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{path}: not a usable TF.js graph model ({exc})") from None
        # Feed and fetch by the signature's tensor names; the keys may be aliases (rvm's ``pha``).
        self.inputs = list(spec["signature"]["inputs"])
        self.outputs = list(spec["signature"]["outputs"])
        tensors = {key: value.get("name", key) for part in ("inputs", "outputs")
                   for key, value in spec["signature"][part].items()}
        self._tf = tf

        def run():
            tf.graph_util.import_graph_def(graph_def, name="")

        # Traced with no arguments: the graph's own input placeholders are fed through ``prune``.
        wrapped = tf.compat.v1.wrap_function(run, signature=[])
        graph = wrapped.graph
        names = lambda keys: [tensors[k] if ":" in tensors[k] else f"{tensors[k]}:0" for k in keys]  # noqa: E731
        self.function = wrapped.prune([graph.get_tensor_by_name(n) for n in names(self.inputs)],
                                 [graph.get_tensor_by_name(n) for n in names(self.outputs)])

    def __call__(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        results = self.function(*[self._tf.constant(x) for x in inputs])
        return {name: r.numpy() for name, r in zip(self.outputs, results, strict=True)}


def _single_threaded(tf) -> None:
    """One thread per TensorFlow call: the least CPU per tile; callers parallelize over images."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already started: keep its settings
        pass


def _weights(spec: dict, folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest, dequantized, by name."""
    weights: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        data = b"".join((folder / p).read_bytes() for p in group["paths"])
        offset = 0
        for entry in group["weights"]:
            shape = [int(d) for d in entry["shape"]]
            count = int(np.prod(shape))
            quant = entry.get("quantization")
            stored = np.dtype(_DTYPES[quant["dtype"] if quant else entry["dtype"]])
            size = count * stored.itemsize
            if offset + size > len(data):
                raise ValueError(f"weights end before {entry['name']}")
            raw = np.frombuffer(data, stored, count, offset)
            offset += size
            if quant and quant["dtype"] in ("uint8", "uint16"):
                raw = raw * np.float32(quant["scale"]) + np.float32(quant["min"])
            weights[entry["name"]] = raw.astype(_DTYPES[entry["dtype"]]).reshape(shape)
    return weights


def _graph_def(spec: dict, folder: Path):
    import tensorflow as tf
    from google.protobuf import json_format

    graph_def = json_format.ParseDict(spec["modelTopology"], tf.compat.v1.GraphDef())
    weights = _weights(spec, folder)
    nodes: list = []
    for node in graph_def.node:
        if node.op == "Const" and node.name in weights:
            # TF.js keeps int64 constants as int32: give each its node's declared type back
            dtype = tf.dtypes.as_dtype(node.attr["dtype"].type).as_numpy_dtype
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(weights[node.name].astype(dtype)))
        nodes.extend(_expand_fused(node) if node.op in _FUSED else [node])
    del graph_def.node[:]
    graph_def.node.extend(nodes)
    return graph_def


def _expand_fused(node):
    """``_FusedConv2D(x, w, b…)`` with fused_ops [BiasAdd, activation?] → Conv2D, BiasAdd, activation."""
    import tensorflow as tf

    fused = [s.decode() for s in node.attr["fused_ops"].list.s]
    if not fused or fused[0] != "BiasAdd" or len(fused) > 2 or (len(fused) == 2 and fused[1] not in _ACTIVATIONS):
        raise ValueError(f"{node.name}: unsupported fused ops {fused}")
    conv = tf.compat.v1.NodeDef(name=f"{node.name}/conv", op=_FUSED[node.op], input=node.input[:2])
    for key in ("T", "strides", "padding", "data_format", "dilations", "explicit_paddings"):
        if key in node.attr:
            conv.attr[key].CopyFrom(node.attr[key])
    if node.op != "_FusedConv2D":
        conv.attr.pop("explicit_paddings", None)
    bias = tf.compat.v1.NodeDef(name=node.name if len(fused) == 1 else f"{node.name}/bias", op="BiasAdd",
                                input=[conv.name, node.input[2]])
    bias.attr["T"].CopyFrom(node.attr["T"])
    bias.attr["data_format"].CopyFrom(node.attr["data_format"])
    out = [conv, bias]
    if len(fused) == 2:
        activation = tf.compat.v1.NodeDef(name=node.name, op=fused[1], input=[bias.name])
        activation.attr["T"].CopyFrom(node.attr["T"])
        if fused[1] == "LeakyRelu" and "leakyrelu_alpha" in node.attr:
            activation.attr["alpha"].CopyFrom(node.attr["leakyrelu_alpha"])
        out.append(activation)
    return out
