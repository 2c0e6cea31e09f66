"""A tiny SavedModel shaped like a dhSegment export: the same nine signatures, input names, dtypes
and output names, with a 1×1 convolution instead of the ResNet (class 3 "people" = red, class 2
"vehicle" = blue)."""

from pathlib import Path

import numpy as np
import tensorflow as tf

SIGNATURES = ("serving_default", "output", "resized_output")


def build_dhsegment_export(folder: Path, signatures: tuple[str, ...] = ("", "from_image:", "from_resized_images:"),
                           input_resized_size: float = 72e2) -> Path:
    export = folder / "export" / "1600000000"
    graph = tf.Graph()
    with graph.as_default():
        filename = tf.compat.v1.placeholder(tf.string, [], name="filename")
        decoded = tf.cast(tf.image.decode_jpeg(tf.io.read_file(filename), channels=3,
                                               try_recover_truncated=True), tf.float32, name="ToFloat")
        original_shape = tf.shape(decoded)[:2]
        shape = tf.cast(tf.shape(decoded)[:2], tf.float32)
        new_h = tf.sqrt(input_resized_size / (shape[1] / shape[0]))
        size = tf.cast([new_h, input_resized_size / new_h], tf.int32)
        resized = tf.compat.v1.image.resize_bilinear(decoded[None], size)
        weights = np.zeros((1, 1, 3, 5), np.float32)
        weights[0, 0, :, 3] = [0.05, -0.05, -0.05]   # people: red
        weights[0, 0, :, 2] = [-0.05, -0.05, 0.05]   # vehicle: blue

        def head(images):
            logits = tf.nn.conv2d(images, weights, 1, "SAME")
            return tf.nn.softmax(logits, name="softmax"), tf.argmax(logits, axis=-1, name="label_preds")

        probs, labels = head(resized)
        full_probs = tf.compat.v1.image.resize_bilinear(probs, original_shape)
        resized_images = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3], name="resized_images")
        r_probs, r_labels = head(resized_images)
        outputs = {"serving_default": {"probs": probs, "labels": labels, "original_shape": original_shape},
                   "output": {"probs": probs, "labels": labels, "original_shape": original_shape},
                   "resized_output": {"probs": full_probs, "labels": labels}}
        inputs = {"": {"filename": filename}, "from_image:": {"image": decoded},
                  "from_resized_images:": {"resized_images": resized_images}}
        defs = {}
        for prefix in signatures:
            for name in SIGNATURES:
                outs = outputs[name] if prefix != "from_resized_images:" else {"probs": r_probs, "labels": r_labels,
                                                                                 "original_shape": original_shape}
                defs[prefix + name] = tf.compat.v1.saved_model.signature_def_utils.predict_signature_def(
                    inputs[prefix], outs)
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.builder.SavedModelBuilder(str(export))
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map=defs)
            builder.save()
    return export
