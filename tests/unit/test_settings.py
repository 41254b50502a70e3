"""Settings from the environment: prefixes, types, secret files, clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from services.ingest.settings import IngestSettings
from shared.settings import SettingsError, database_settings, kafka_settings, load


@dataclass(frozen=True)
class Example:
    name: str = "x"
    port: int = 1
    ratio: float = 0.5
    enabled: bool = False
    keys: tuple[str, ...] = ()
    optional: str | None = None


def test_defaults_without_environment() -> None:
    assert load(Example, "EX_", {}) == Example()


def test_values_are_parsed_by_type() -> None:
    env = {
        "EX_NAME": " n ",
        "EX_PORT": "8080",
        "EX_RATIO": "0.25",
        "EX_ENABLED": "yes",
        "EX_KEYS": "a, b,,c",
        "EX_OPTIONAL": "",
    }
    assert load(Example, "EX_", env) == Example("n", 8080, 0.25, True, ("a", "b", "c"), None)


def test_only_the_prefix_is_read() -> None:
    assert load(Example, "EX_", {"PORT": "9", "OTHER_PORT": "9"}).port == 1


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("EX_PORT", "eighty", "EX_PORT must be a number"),
        ("EX_ENABLED", "maybe", "EX_ENABLED must be true or false"),
    ],
)
def test_bad_values_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load(Example, "EX_", {variable: value})


def test_secrets_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "keys"
    secret.write_text("k1,k2\n")
    settings = load(IngestSettings, "INGEST_", {"INGEST_API_KEYS_FILE": str(secret)})
    assert settings.api_keys == ("k1", "k2")
    # The variable itself wins over the file.
    both = {"INGEST_API_KEYS": "k3", "INGEST_API_KEYS_FILE": str(secret)}
    assert load(IngestSettings, "INGEST_", both).api_keys == ("k3",)


def test_an_unreadable_secret_file_is_named_without_its_content(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="INGEST_API_KEYS_FILE cannot be read"):
        load(IngestSettings, "INGEST_", {"INGEST_API_KEYS_FILE": str(tmp_path / "missing")})


def test_shared_kafka_and_database_settings() -> None:
    kafka = kafka_settings(
        {"KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092", "KAFKA_ENABLE_IDEMPOTENCE": "true"}
    )
    assert (kafka.bootstrap_servers, kafka.enable_idempotence) == ("k1:9092,k2:9092", True)
    assert kafka_settings({}).enable_idempotence is False  # Tansu, the local default
    assert database_settings({"DATABASE_URL": "postgresql://h/db"}).url == "postgresql://h/db"


def test_service_settings_defaults_match_the_contract_ports() -> None:
    assert load(IngestSettings, "INGEST_", {}).port == 8080
