"""``kva kafka TOOL``: Kafka's own tools, from the broker's jars, against a real broker.

Each tool is run as a user would, through ``python -m kva kafka``, on a topic of kva
frames; kcat, from Debian, reads the same records, as the README shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from kva.settings import KafkaSettings
from kva.zookeeper.cluster import ClusterSpec, KafkaCluster
from kva.zookeeper.tools import TOOLS, ToolError, client_properties, tool_argv
from tests.support.frames import jpeg, make_frame
from tests.support.kafka import Reader, send_frames
from tests.support.process import clean_env, run_kva
from tests.support.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.subprocess]

KCAT = "kcat"


def kafka(settings: KafkaSettings, *args: str, stdin: str | None = None) -> str:
    """``kva kafka ARGS`` against the broker of ``settings``: its stdout (it must succeed)."""
    done = subprocess.run(
        [sys.executable, "-m", "kva", "kafka", *args],
        input=stdin,
        env=clean_env({"KVA_BOOTSTRAP_SERVER": settings.bootstrap_server}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_topics_create_describe_and_list(kafka_settings: KafkaSettings, unique_name: str) -> None:
    topic = f"{unique_name}-t"
    assert f"Created topic {topic}." in kafka(
        kafka_settings, "topics", "--create", "--topic", topic, "--partitions", "3"
    )
    described = kafka(kafka_settings, "topics", "--describe", "--topic", topic)
    assert "PartitionCount: 3" in described
    assert topic in kafka(kafka_settings, "topics", "--list").split()


def test_console_consumer_shows_a_frames_headers_and_feeds_consumer_groups(
    kafka_settings: KafkaSettings, make_topic, unique_name: str
) -> None:
    topic = make_topic(partitions=1)
    send_frames(kafka_settings, topic, make_frame("door", 7, jpeg(64, 48), 64, 48))
    group = f"{unique_name}-watchers"
    printed = kafka(
        kafka_settings,
        "console-consumer",
        "--topic", topic,
        "--from-beginning",
        "--max-messages", "1",
        "--group", group,
        "--property", "print.key=true",
        "--property", "print.headers=true",
        "--property", "print.value=false",
    )  # fmt: skip
    assert "kva-seq:7" in printed and "kva-width:64" in printed and "door" in printed, printed
    groups = kafka(kafka_settings, "consumer-groups", "--describe", "--group", group)
    row = next(line.split() for line in groups.splitlines() if line.startswith(group))
    assert row[1:6] == [topic, "0", "1", "1", "0"], groups  # partition, offset, end, lag
    assert group in kafka(kafka_settings, "consumer-groups", "--list").split()
    assert f"{topic}:0:1" in kafka(kafka_settings, "get-offsets", "--topic", topic).split()


def test_console_producer_sends_headers_kva_reads(
    kafka_settings: KafkaSettings, make_topic, unique_name: str
) -> None:
    topic = make_topic()
    reader = Reader(kafka_settings, topic, f"{unique_name}-reader")
    try:
        kafka(
            kafka_settings,
            "console-producer",
            "--topic", topic,
            "--property", "parse.key=true",
            "--property", "parse.headers=true",
            stdin="origin:console\tcam9\t{\"hello\": 1}\n",
        )  # fmt: skip
        wait_for(lambda: reader.records, 30, "the console producer's record")
        record = reader.records[0]
        assert record.key == b"cam9"
        assert json.loads(record.value or b"") == {"hello": 1}
        assert ("origin", b"console") in list(record.headers)
    finally:
        reader.close()


def test_configs_describes_a_topic(kafka_settings: KafkaSettings, make_topic) -> None:
    topic = make_topic()
    kafka(
        kafka_settings,
        "configs", "--alter", "--entity-type", "topics", "--entity-name", topic,
        "--add-config", "retention.ms=60000",
    )  # fmt: skip
    described = kafka(
        kafka_settings, "configs", "--describe", "--entity-type", "topics", "--entity-name", topic
    )
    assert "retention.ms=60000" in described


def test_kcat_reads_the_same_frames(kafka_settings: KafkaSettings, make_topic) -> None:
    topic = make_topic()
    send_frames(kafka_settings, topic, make_frame("porch", 3, jpeg(32, 24), 32, 24))
    kcat = shutil.which(KCAT)
    assert kcat, "kcat is installed by scripts/setup.sh"
    done = subprocess.run(
        [KCAT, "-b", kafka_settings.bootstrap_server, "-C", "-t", topic, "-o", "beginning",
         "-c", "1", "-e", "-f", "%k %h\n"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("porch ") and "kva-seq=3" in done.stdout, done.stdout


def test_an_unknown_tool_is_a_clear_error() -> None:
    done = run_kva("kafka", "topicz", "--list")
    assert done.returncode == 2
    assert "unknown Kafka tool 'topicz': choose from topics, console-consumer" in done.stderr


def test_the_tools_log_in_with_kvas_sasl_settings_and_the_secret_stays_private() -> None:
    secret = "tools-Secret-2718"
    spec = ClusterSpec(port=0, heap="384m", sasl_users=(("admin", secret),))
    with KafkaCluster(spec) as cluster:
        env = {
            "KVA_BOOTSTRAP_SERVER": cluster.bootstrap_server,
            "KVA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KVA_SASL_MECHANISM": "SCRAM-SHA-256",
            "KVA_SASL_USERNAME": "admin",
            "KVA_SASL_PASSWORD": secret,
        }
        before = set(Path(tempfile.gettempdir()).glob("kva-kafka-*"))
        done = run_kva("kafka", "topics", "--create", "--topic", "secured", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Created topic secured." in done.stdout
        assert secret not in done.stdout + done.stderr
        assert set(Path(tempfile.gettempdir()).glob("kva-kafka-*")) == before  # removed
        wrong = run_kva("kafka", "topics", "--list", env={**env, "KVA_SASL_PASSWORD": "nope"})
        assert wrong.returncode != 0
        assert "nope" not in wrong.stdout + wrong.stderr


# --- the command line, without a broker -------------------------------------------


def test_the_bootstrap_server_and_client_config_are_added_only_when_missing() -> None:
    common = {"java": "java", "classpath": "jars/*", "bootstrap_server": "b:9092"}
    argv = tool_argv("topics", ["--list"], properties_file=Path("/p"), **common)
    assert argv[-5:] == ["--bootstrap-server", "b:9092", "--command-config", "/p", "--list"]
    own = tool_argv(
        "kafka-console-consumer.sh",
        ["--bootstrap-server=x:1", "--consumer.config", "mine"],
        properties_file=Path("/p"),
        **common,
    )
    assert TOOLS["console-consumer"].main_class in own
    assert "b:9092" not in own and "/p" not in own
    with pytest.raises(ToolError, match="unknown Kafka tool"):
        tool_argv("zookeeper-shell", [], properties_file=None, **common)


def test_client_properties_quote_the_credentials() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="PLAIN",
        sasl_username='al"ice',
        sasl_password='p\\w"d',  # type: ignore[arg-type]
        ssl_ca_location="/ca.pem",
    )
    text = client_properties(settings)
    assert (
        "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required"
        ' username="al\\"ice" password="p\\\\w\\"d";'
    ) in text
    assert "ssl.truststore.type=PEM\nssl.truststore.location=/ca.pem\n" in text
    assert client_properties(KafkaSettings()) == ""
    with pytest.raises(ToolError, match="client certificates"):
        client_properties(KafkaSettings(security_protocol="SSL", ssl_key_location="/k.pem"))
