"""``--model NAME=openvino:PATH``: the consumer runs the model itself, no server."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from kva.consumer.backends import backend_for_url
from kva.consumer.config import parse_model_spec
from kva.consumer.errors import MetadataError
from kva.consumer.model_input import InputOptions, input_format, to_tensor
from kva.consumer.openvino_backend import OpenVinoBackend
from kva.consumer.work import decode_jpeg, resize_for_model
from kva.frame import Frame
from tests.consumer.conftest import consumer_settings, metadata_docs, running_consumer
from tests.models.expectations import CLASSIFICATION_CASES, photo, photo_jpeg
from tests.support.kafka import send_frames
from tests.support.wait import wait_for

MODEL = "mobilenet_v2"


def test_the_backend_reads_metadata_labels_and_classifies(built_models: Path) -> None:
    backend = backend_for_url(f"openvino:{built_models / MODEL}")
    assert isinstance(backend, OpenVinoBackend) and backend.model_name == MODEL
    info = backend.metadata()
    assert (info.kind, info.input_name, info.width, info.height) == (
        "classifier",
        "image",
        224,
        224,
    )
    labels = backend.labels()
    assert labels is not None and len(labels) == 1000
    fmt = input_format(info, InputOptions(send="tensor"))
    image = decode_jpeg(photo_jpeg("chelsea"))
    assert image is not None
    outputs = backend.infer(info, to_tensor(resize_for_model(image, (224, 224)), fmt))
    top = int(outputs["classes"][outputs["scores"].argmax()])
    assert labels[top] in CLASSIFICATION_CASES["chelsea"]
    backend.close()


def test_a_version_folder_works_too_and_a_missing_one_is_clear(
    built_models: Path, tmp_path: Path
) -> None:
    version = tmp_path / "mine" / "7"
    shutil.copytree(built_models / MODEL / "1", version)
    assert backend_for_url(f"openvino:{version}").metadata().kind == "classifier"
    with pytest.raises(MetadataError, match="not a folder"):
        backend_for_url(f"openvino:{tmp_path / 'nothing'}").metadata()
    with pytest.raises(ValueError, match="expected openvino:PATH"):
        parse_model_spec("m=openvino:")


@pytest.mark.integration
def test_the_consumer_runs_the_model_in_process(
    built_models: Path, kafka_settings, topics, unique_name, reader
) -> None:
    settings = consumer_settings(
        kafka_settings,
        topics,
        unique_name,
        consume_models=[f"{MODEL}=openvino:{built_models / MODEL}"],
    )
    meta = reader(topics.metadata)
    with running_consumer(settings):
        for seq, name in enumerate(("chelsea", "coffee")):
            image = photo(name)
            frame = Frame(
                name, seq, time.time_ns(), image.shape[1], image.shape[0], photo_jpeg(name)
            )
            send_frames(kafka_settings, topics.input, frame)
            wait_for(lambda n=seq + 1: meta.count() >= n, 60, f"frame {name} processed")
    for doc, name in zip(metadata_docs(meta.snapshot()), ("chelsea", "coffee"), strict=True):
        (result,) = doc["models"]
        assert result["status"] == "ok" and result["replica"].startswith("openvino:"), result
        assert result["classes"][0]["label"] in CLASSIFICATION_CASES[name], result
