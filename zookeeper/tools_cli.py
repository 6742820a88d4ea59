"""``kva kafka TOOL ARGS…``: Kafka's own command-line tools against kva's broker."""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import tempfile
from pathlib import Path

from kva.cliargs import add_settings_arguments, settings_from_args
from kva.zookeeper.config import KafkaToolSettings
from kva.zookeeper.tools import TOOLS

logger = logging.getLogger(__name__)

NAME = "kafka"
HELP = "run Kafka's own tools (topics, console-consumer, ...) against the broker"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    tools = "\n".join(f"  {name:<18} {tool.summary}" for name, tool in TOOLS.items())
    parser = subparsers.add_parser(
        NAME,
        help=HELP,
        description=HELP + ". The tools come from the same Kafka jars as `kva broker`; "
        "--bootstrap-server and the SASL/SSL client settings are added from kva's settings "
        "unless ARGS give their own. `kva kafka TOOL --help` shows a tool's own flags.",
        epilog="tools:\n" + tools,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="kva kafka [kva options] TOOL [ARGS ...]",
    )
    add_settings_arguments(parser, KafkaToolSettings)
    parser.add_argument("tool", metavar="TOOL", help="one of: " + ", ".join(TOOLS))
    parser.add_argument("tool_args", nargs=argparse.REMAINDER, metavar="ARGS")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from kva.zookeeper.jars import ToolMissing, jar_dir, require_tool
    from kva.zookeeper.tools import ToolError, client_properties, tool, tool_argv

    settings = settings_from_args(KafkaToolSettings, args)
    try:
        tool(args.tool)
        properties = client_properties(settings)
        java = require_tool(
            "java",
            "install a Java 17+ runtime (Debian: apt-get install -y openjdk-17-jre-headless)",
        )
        classpath = str(jar_dir() / "*")
    except (ToolError, ToolMissing, RuntimeError) as exc:
        logger.error("%s", exc)
        return 2 if isinstance(exc, ToolError) else 1
    with tempfile.TemporaryDirectory(prefix="kva-kafka-") as folder:
        properties_file = None
        if properties:
            properties_file = Path(folder) / "client.properties"
            fd = os.open(properties_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(properties)
        argv = tool_argv(
            args.tool,
            args.tool_args,
            java=java,
            classpath=classpath,
            bootstrap_server=settings.bootstrap_server,
            properties_file=properties_file,
        )
        process = subprocess.Popen(argv)  # noqa: S603 - fixed argv, no shell
        while True:
            try:
                return process.wait()
            except KeyboardInterrupt:
                continue  # Ctrl-C reached the tool too (one process group): let it finish
