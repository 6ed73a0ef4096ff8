"""Reading the settings (cogs.core.operator.settings): the environment over `.env`, blanks as unset,
and a bad value named in one line without ever echoing a secret."""

from pathlib import Path

import pytest

from cogs.core.operator.settings import ConfigError, Settings, load_settings

ALL_NAMES = [name.upper() for name in Settings.__dataclass_fields__]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ALL_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_defaults_without_environment_or_file(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert load_settings(tmp_path / ".env") == Settings()


def test_the_environment_wins_over_the_file_and_blanks_count_as_unset(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "LOG_LEVEL=debug\nJOB_LEASE_SECONDS=30\nDISCORD_RATE_LIMIT=\nSHARD_IDS=0,1\n"
        "# a comment\nSHARD_COUNT=4\n",
        encoding="utf-8",
    )
    clean_env.setenv("JOB_LEASE_SECONDS", "45")
    clean_env.setenv("SHARD_IDS", "  ")  # blank in the environment: the file's value stands
    settings = load_settings(env_file)
    assert settings.log_level == "DEBUG"
    assert settings.job_lease_seconds == 45
    assert settings.discord_rate_limit == 50.0
    assert (settings.shard_count, settings.shard_ids) == (4, "0,1")


@pytest.mark.parametrize(
    ("name", "value", "why"),
    [
        ("JOB_LEASE_SECONDS", "4", "from 5 to 240"),
        ("JOB_LEASE_SECONDS", "ninety", "whole number"),
        ("DISCORD_RATE_LIMIT", "0", "above 0"),
        ("DISCORD_RATE_LIMIT", "nan", "above 0"),
        ("METRICS_PORT", "70000", "from 1 to 65535"),
        ("LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_setting(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, name: str, value: str, why: str
) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / ".env")
    message = str(caught.value)
    assert message.startswith(f"{name} is invalid") and why in message and "\n" not in message


def test_secrets_never_show(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("DISCORD_TOKEN", "very-secret-token")
    clean_env.setenv("DATA_KEY", "very-secret-key")
    settings = load_settings(tmp_path / ".env")
    assert settings.discord_token == "very-secret-token"
    assert "very-secret" not in repr(settings)


def test_an_unreadable_env_file_is_one_line(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_bytes(b"LOG_LEVEL=\xff\xfe\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(env_file)
    assert ".env cannot be read" in str(caught.value) and "\n" not in str(caught.value)
