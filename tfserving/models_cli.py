"""``kva models``: build the real trained models into a model repository, and list them."""

from __future__ import annotations

import argparse
import logging

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.tfserving.modelbuild.config import ModelsSettings

logger = logging.getLogger(__name__)

NAME = "models"
HELP = "build the real trained models (OpenVINO IR) into a model repository, offline"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from kva.tfserving.modelbuild.registry import MODELS

    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". Weights come from installed pip packages; nothing is downloaded.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="build models (cached: skipped when already built)",
        description="Build models into BASE/<name>/<version>/ as OpenVINO IR with their "
        "kva-model.json (and labels.json). Known models: " + ", ".join(MODELS) + ".",
    )
    build.add_argument("names", nargs="*", metavar="NAME", help="models to build")
    build.add_argument("--all", action="store_true", help="build every known model")
    build.add_argument("--force", action="store_true", help="rebuild even if already built")
    add_settings_arguments(build, ModelsSettings)
    build.set_defaults(run=run_build, parser=build)
    listing = actions.add_parser("list", help="list the known models and whether they are built")
    add_settings_arguments(listing, ModelsSettings)
    listing.set_defaults(run=run_list)
    parser.set_defaults(run=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_build(args: argparse.Namespace) -> int:
    """Build the named models (or all); exit 1 with a clear message on failure."""
    from kva.tfserving.modelbuild import (
        MODELS,
        ModelBuildError,
        UnknownModel,
        build_model,
        get_spec,
    )

    settings = settings_from_args(ModelsSettings, args)
    if args.all and args.names:
        args.parser.error("give model names or --all, not both")
    names = list(MODELS) if args.all else args.names
    if not names:
        args.parser.error("name the models to build (known: " + ", ".join(MODELS) + ") or --all")
    for name in names:
        try:
            get_spec(name)
        except UnknownModel as exc:
            args.parser.error(str(exc))
    base_path = settings.base_path()
    try:
        for name in names:
            folder = build_model(name, base_path, force=args.force)
            print(f"{name}: {folder}", flush=True)  # noqa: T201
    except ModelBuildError as exc:
        logger.error("%s", exc)
        return 1
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print one line per known model: name, version, built or not, summary."""
    from kva.tfserving.modelbuild import MODELS, is_built, version_dir

    base_path = settings_from_args(ModelsSettings, args).base_path()
    print(f"model repository: {base_path}")  # noqa: T201
    for name, spec in MODELS.items():
        state = "built" if is_built(name, base_path) else "not built"
        print(f"{name:<14} v{spec.version:<4} {state:<10} {spec.summary}")  # noqa: T201
        if state == "built":
            print(f"{'':<14} {version_dir(name, base_path)}")  # noqa: T201
    return 0
