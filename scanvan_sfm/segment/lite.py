"""A TF.js graph model with fixed input shapes, run through TensorFlow Lite (``tf.lite``, part of
the ``tensorflow`` package) with its XNNPACK delegate, in float32: the same outputs as the
TensorFlow graph to about 1e-5, in 1.03–1.3× less time per NanoDet tile, depending on the
machine's load (``benchmarks/detector_runtime.py``).
Measured and left out: int8 weights (dynamic range) are 2.5× faster still but lose a person and a
vehicle of the labelled panoramas; float16 weights are no faster on a CPU.
"""

from __future__ import annotations

import warnings

import numpy as np

from .tfjs import TfjsGraphModel


class LiteModel:
    """``model(inputs) -> {output name: array}``, like ``TfjsGraphModel``, for inputs of the
    shapes it was converted for."""

    def __init__(self, graph: TfjsGraphModel, shapes: list[tuple[int, ...]]):
        import tensorflow as tf

        self.inputs, self.outputs = graph.inputs, graph.outputs
        function = tf.function(lambda *args: tuple(graph.function(*args)),
                               input_signature=[tf.TensorSpec(s, tf.float32) for s in shapes])
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function.get_concrete_function()], function)
        with warnings.catch_warnings():  # tf.lite.Interpreter's notice that LiteRT will take over
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(model_content=converter.convert(), num_threads=1)
        self._interpreter.allocate_tensors()
        # Inputs and outputs keep the function's order.
        self._feeds = [d["index"] for d in self._interpreter.get_input_details()]
        self._fetches = [d["index"] for d in self._interpreter.get_output_details()]

    def __call__(self, *inputs: np.ndarray) -> dict[str, np.ndarray]:
        for index, value in zip(self._feeds, inputs, strict=True):
            self._interpreter.set_tensor(index, value)
        self._interpreter.invoke()
        return {name: self._interpreter.get_tensor(index) for name, index in zip(self.outputs, self._fetches,
                                                                                   strict=True)}
