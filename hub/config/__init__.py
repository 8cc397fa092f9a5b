"""The config file (hub.yaml) and the environment -> frozen Settings.

    find_config(path)        which file: --config, else $HUB_CONFIG, else ./hub.yaml
    load(path) / loads(text) read and validate; ConfigError carries every problem (file:line)
    missing_secrets(s)       ${NAME} references whose environment variable is unset
    redact(obj) / redact_text(text, s)   keep secret values out of output and messages
    example_config()         the commented example that `hub init` writes
"""

from __future__ import annotations

from importlib.resources import files

from hub.config.loader import find_config, load, loads
from hub.config.model import (
    ConflictConfig,
    ConnectionConfig,
    FlowConfig,
    RetryPolicy,
    Secret,
    Settings,
    SystemConfig,
)
from hub.config.secrets import is_secret_key, missing_secrets, redact, redact_text
from hub.config.semantics import ENTITIES


def example_config() -> str:
    """The commented example config `hub init` writes (hub/templates/hub.yaml)."""
    return files("hub").joinpath("templates", "hub.yaml").read_text(encoding="utf-8")


__all__ = [
    "ENTITIES", "ConflictConfig", "ConnectionConfig", "FlowConfig", "RetryPolicy", "Secret",
    "Settings", "SystemConfig", "example_config", "find_config", "is_secret_key", "load",
    "loads", "missing_secrets", "redact", "redact_text",
]
