"""File names in a config: relative to the config file, or a systemd credential.

A value ``credential:NAME`` names the file systemd hands the service for
``LoadCredential=NAME:/etc/edgepipe/credentials/NAME`` (``$CREDENTIALS_DIRECTORY/NAME``):
the way to give a dynamic-user service a secret that stays 0600 root on disk (a TLS or
OPC-UA private key, a password file). Without ``$CREDENTIALS_DIRECTORY`` (not started by
systemd) it stays the literal ``$CREDENTIALS_DIRECTORY/NAME``, which the key's own check
reports as unreadable.
"""

from __future__ import annotations

__all__ = ["CREDENTIAL", "config_file_path"]

import os
from pathlib import Path

CREDENTIAL = "credential:"


def config_file_path(value: str, base_dir: Path) -> str:
    """The file ``value`` names in a config read from ``base_dir``."""
    if value.startswith(CREDENTIAL):
        name = value[len(CREDENTIAL) :]
        directory = os.environ.get("CREDENTIALS_DIRECTORY") or "$CREDENTIALS_DIRECTORY"
        return os.path.join(directory, name)
    return str(base_dir / value) if value and not Path(value).is_absolute() else value
