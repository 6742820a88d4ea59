"""TensorFlow's side of the model-format tests, run in a child process (``python -m``).

TensorFlow (from the ``[grpc]`` extra) builds the SavedModel a TF Serving user
would bring, and runs it and the face detector's ``.tflite`` on an input, so the
test compares ``kva serve`` (OpenVINO) with TensorFlow itself. It runs apart
from the test process so that TensorFlow and OpenVINO never share one::

    python -m tests.support.tf_models saved-model DIR
    python -m tests.support.tf_models nchw-classifier DIR
    python -m tests.support.tf_models run-saved-model DIR INPUT.npy OUTPUT.npz
    python -m tests.support.tf_models run-tflite FILE INPUT.npy OUTPUT.npz
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

#: The SavedModel's image size and class count.
IMAGE_SIZE = 32
CLASSES = 5


def saved_model(folder: Path) -> None:
    """A small image classifier with a TF-Serving-style signature.

    ``serving_default``: input ``image_bytes`` float32 ``[N, 32, 32, 3]`` (RGB 0..255),
    outputs ``classes`` int64 ``[N]`` and ``probabilities`` float32 ``[N, 5]``.
    """
    import tensorflow as tf

    tf.keras.utils.set_random_seed(7)
    image = tf.keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image_bytes")
    x = tf.keras.layers.Conv2D(8, 3, activation="relu")(image / 255.0)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    logits = tf.keras.layers.Dense(CLASSES)(x)
    model = tf.keras.Model(image, logits)
    spec = tf.TensorSpec([None, IMAGE_SIZE, IMAGE_SIZE, 3], tf.float32, name="image_bytes")

    @tf.function(input_signature=[spec])
    def serve(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        probabilities = tf.nn.softmax(model(image_bytes))
        return {"classes": tf.argmax(probabilities, axis=1), "probabilities": probabilities}

    tf.saved_model.save(model, str(folder), signatures={"serving_default": serve})


def nchw_classifier(folder: Path) -> None:
    """A classifier as the consumer reads one, taking a float NCHW tensor.

    ``serving_default``: input ``pixels`` float32 ``[N, 3, 48, 64]`` (the consumer
    normalises), outputs ``scores`` float32 ``[N, 5]`` and ``classes`` int32 ``[N, 5]``.
    """
    import tensorflow as tf

    tf.keras.utils.set_random_seed(11)
    pixels = tf.keras.Input((3, 48, 64), name="pixels")
    x = tf.keras.layers.Permute((2, 3, 1))(pixels)
    x = tf.keras.layers.Conv2D(8, 3, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(pixels, tf.keras.layers.Dense(CLASSES)(x))
    spec = tf.TensorSpec([None, 3, 48, 64], tf.float32, name="pixels")

    @tf.function(input_signature=[spec])
    def serve(pixels: tf.Tensor) -> dict[str, tf.Tensor]:
        scores = tf.nn.softmax(model(pixels))
        classes = tf.tile(tf.range(CLASSES, dtype=tf.int32)[None], [tf.shape(pixels)[0], 1])
        return {"scores": scores, "classes": classes}

    tf.saved_model.save(model, str(folder), signatures={"serving_default": serve})


def run_saved_model(folder: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    import tensorflow as tf

    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    (name,) = serve.structured_input_signature[1]
    return {k: v.numpy() for k, v in serve(**{name: tf.constant(inputs)}).items()}


def run_tflite(path: Path, inputs: np.ndarray) -> dict[str, np.ndarray]:
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], inputs)
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


def call(*args: str | Path) -> None:
    """Run this module in a child process (TensorFlow's logs quiet); raise on failure."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(  # noqa: S603 - our own module
        [sys.executable, "-m", "tests.support.tf_models", *map(str, args)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"tf_models {args[0]} failed:\n{done.stderr[-3000:]}")


def _main(argv: list[str]) -> None:
    command, path = argv[0], Path(argv[1])
    builders = {"saved-model": saved_model, "nchw-classifier": nchw_classifier}
    if command in builders:
        builders[command](path)
        return
    runner = {"run-saved-model": run_saved_model, "run-tflite": run_tflite}[command]
    outputs = runner(path, np.load(argv[2]))
    np.savez(argv[3], **outputs)


if __name__ == "__main__":
    _main(sys.argv[1:])
