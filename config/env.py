"""Small helpers that read settings from the environment (12-factor).

Every setting Quench reads is documented in `.env.example`.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}.") from None


def env_list(name: str, default: str = "") -> list[str]:
    raw = os.environ.get(name, default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str, default: str = "") -> str:
    """Read a secret from NAME, or from the file named by NAME_FILE (Docker/K8s secrets)."""
    file_name = os.environ.get(f"{name}_FILE")
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE points at {file_name!r}, which cannot be read: {exc}.") from None
    return os.environ.get(name, default)


def load_env_file(path: Path) -> bool:
    """Read `KEY=VALUE` lines of a `.env` file into the environment; True when the file was there.

    What the environment already sets wins, so a real deployment's variables are never
    overridden by a forgotten file. Blank lines and `#` comments are skipped; a value may be
    quoted with ' or ". `make run` writes one with a generated SECRET_KEY for local use, so
    `manage.py`, `gunicorn` and the cluster started from a plain shell find the same key.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ImproperlyConfigured(f"{path} exists but cannot be read: {exc.strerror}.") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.removeprefix("export ").partition("=")
        name, value = name.strip(), value.strip()
        if not separator or not name.isidentifier():
            raise ImproperlyConfigured(f"{path}, line {number}: expected NAME=value, got {line[:60]!r}.")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        os.environ.setdefault(name, value)
    return True
