"""An MLServer runtime running an OpenVINO IR: MLServer as a real third-party replica.

Loaded by MLServer itself (its own virtual environment, ``.venv-mlserver``, made by
``scripts/setup.sh test``), never imported by kva or its tests. It takes tensors only:
MLServer decodes no images, which is why the consumer sends it ``send=tensor``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openvino as ov
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OpenVINOModel(MLModel):  # type: ignore[misc]
    """``parameters.uri``: a folder holding ``model.xml``."""

    async def load(self) -> bool:
        core = ov.Core()
        folder = Path(str(self.settings.parameters.uri))
        self._compiled: Any = core.compile_model(core.read_model(folder / "model.xml"), "CPU")
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {item.name: NumpyCodec.decode_input(item) for item in payload.inputs}
        result = self._compiled.create_infer_request().infer(feeds)
        outputs = [
            NumpyCodec.encode_output(name=port.get_any_name(), payload=result[port])
            for port in self._compiled.outputs
        ]
        return InferenceResponse(model_name=self.name, model_version=self.version, outputs=outputs)
