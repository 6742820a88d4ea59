"""``kva serve``: the TF Serving / KServe v2 compatible model server on OpenVINO (wiring only:
parse and check the settings, build :class:`~kva.tfserving.service.ModelServerService`, run it)."""

from __future__ import annotations

import argparse

from kva.cliargs import SettingsError, add_settings_arguments, settings_from_args
from kva.tfserving.config import ServeSettings
from kva.tfserving.model_config import ModelConfig, ModelConfigError, load_model_config

NAME = "serve"
HELP = "serve OpenVINO models over TF Serving /v1 and KServe /v2 REST"
_PASSTHROUGH_DEVICES = ("AUTO", "MULTI", "HETERO", "BATCH")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". Flags as tensorflow_model_server's. One model "
        "(--model_name + --model_base_path) or several (--model_config_file in TF Serving's "
        "model_config_list text format). Model folders: <base_path>/<version>/ holding "
        "model.xml (OpenVINO IR), saved_model.pb (TensorFlow SavedModel), *.onnx, *.tflite, "
        "*.pdmodel or a frozen *.pb.",
    )
    add_settings_arguments(parser, ServeSettings)
    parser.set_defaults(run=run)


def model_configs(settings: ServeSettings) -> list[ModelConfig]:
    """The models to serve, from the config file or the single-model flags."""
    if settings.model_config_file is not None:
        try:
            configs = load_model_config(settings.model_config_file)
        except ModelConfigError as exc:
            raise SettingsError(str(exc)) from None
    else:
        assert settings.model_base_path is not None  # noqa: S101 - checked by ServeSettings
        configs = [ModelConfig(settings.model_name, settings.model_base_path.resolve())]
    for config in configs:
        if not config.base_path.is_dir():
            raise SettingsError(
                f"model {config.name}: base path {config.base_path} is not a folder "
                "(expected <base_path>/<version>/<model file>)"
            )
    return configs


def check_device(device: str) -> None:
    """Fail clearly when the OpenVINO device is not on this machine."""
    import openvino as ov

    if device.split(":", 1)[0].upper() in _PASSTHROUGH_DEVICES:
        return
    available = ov.Core().available_devices
    if device not in available and device.split(".", 1)[0] not in available:
        raise SettingsError(
            f"--device {device}: not available here (OpenVINO sees: {', '.join(available)})"
        )


def run(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit status."""
    from kva.lifecycle import install_stop_handlers
    from kva.service import run_service
    from kva.tfserving.service import ModelServerService

    settings = settings_from_args(ServeSettings, args)
    if settings.grpc_port is not None:
        from kva.tfserving.grpc_server import check_grpc

        check_grpc()
    configs = model_configs(settings)
    check_device(settings.serve_device)
    stop = install_stop_handlers()
    return run_service(ModelServerService(settings, configs), stop)
