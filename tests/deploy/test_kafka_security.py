"""Kafka security and durability settings as the deployments give them: SASL/SCRAM over TLS
wired into the clients (the password from a file), refused when half-configured, and topics
created with min.insync.replicas (2 from replication factor 3)."""

from __future__ import annotations

import ssl
import uuid
from pathlib import Path

import pytest
import trustme
from aiokafka.admin import AIOKafkaAdminClient

from shared import kafka
from shared.events import Topic
from shared.settings import SettingsError, kafka_settings
from tests.conftest import Running

SCRAM = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "ripples",
}


def test_sasl_scram_over_tls_reaches_the_clients(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "password").write_text("s3cret\n")
    settings = kafka_settings(
        SCRAM
        | {
            "KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "password"),
            "KAFKA_SSL_CAFILE": str(tmp_path / "ca.pem"),
        }
    )
    options = kafka._connection(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "ripples"
    assert options["sasl_plain_password"] == "s3cret"
    context: ssl.SSLContext = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert len(context.get_ca_certs()) == 1  # our CA, not the system's


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_USERNAME": "u"}, "MECHANISM"),
        (SCRAM, "KAFKA_SASL_PASSWORD"),
        ({"KAFKA_SASL_MECHANISM": "SCRAM-SHA-512"}, "SASL_SSL"),
        (SCRAM | {"KAFKA_SASL_MECHANISM": "GSSAPI", "KAFKA_SASL_PASSWORD": "p"}, "MECHANISM"),
    ],
)
def test_half_configured_security_is_refused(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        kafka._connection(kafka_settings(environ))


@pytest.mark.parametrize(
    ("replication", "explicit", "wanted"),
    [("1", None, 1), ("2", None, 1), ("3", None, 2), ("5", None, 2), ("3", "3", 3)],
)
def test_min_insync_replicas(replication: str, explicit: str | None, wanted: int) -> None:
    environ = {"KAFKA_REPLICATION_FACTOR": replication}
    if explicit:
        environ["KAFKA_MIN_INSYNC_REPLICAS"] = explicit
    settings = kafka_settings(environ)
    (topic,) = kafka.new_topics(settings, [Topic("t", 3, "a test topic")])
    assert topic.replication_factor == int(replication)
    assert topic.topic_configs == {"min.insync.replicas": str(wanted)}


@pytest.mark.integration
async def test_topics_are_created_with_their_configs(broker: Running) -> None:
    """On the real (local) broker: created with min.insync.replicas, partitions kept."""
    name = f"test.min-isr.{uuid.uuid4().hex[:8]}"
    settings = kafka_settings({"KAFKA_BOOTSTRAP_SERVERS": broker.address})
    assert await kafka.ensure_topics(settings, [Topic(name, 3, "a test topic")]) == [name]
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.address)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([name])
        assert len(described["partitions"]) == 3
    finally:
        await admin.close()
