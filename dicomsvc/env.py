"""Typed readers for environment settings.

Every reader fails loudly: an unparseable value stops start-up with a message that
names the variable, instead of silently falling back to a default.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import unquote, urlsplit


class SettingError(Exception):
    """An environment setting has a value that cannot be used."""


def _raw(name: str) -> str | None:
    # Docker secrets: NAME_FILE points at a file holding the value.
    file_path = os.environ.get(f"{name}_FILE")
    if file_path:
        try:
            with open(file_path, encoding="utf-8") as fh:
                return fh.read().strip()
        except OSError as exc:
            raise SettingError(f"{name}_FILE: cannot read {file_path!r}: {exc}") from exc
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None else value


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise SettingError(f"{name}: expected a whole number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise SettingError(f"{name}: must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise SettingError(f"{name}: must be at most {maximum}, got {number}")
    return number


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise SettingError(f"{name}: expected one of true/false/1/0/yes/no/on/off, got {value!r}")


def env_list(name: str, default: list[str], *, separator: str = ",") -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(separator) if item.strip()]


def env_origins(name: str) -> list[str]:
    """Comma-separated web origins (`scheme://host[:port]`, no path), or `*` for any."""
    origins = env_list(name, [])
    for origin in origins:
        if origin == "*":
            continue
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path or parts.query or parts.fragment:
            raise SettingError(f"{name}: {origin!r} is not an origin (scheme://host[:port], no path) nor '*'")
    return origins


def env_template(name: str, default: str, *, fields: tuple[str, ...]) -> str:
    """A `str.format` template (e.g. a URL) that may name only `fields`, each as `{field}`."""
    value = env_str(name, default)
    try:
        value.format(**dict.fromkeys(fields, ""))
    except (KeyError, IndexError, ValueError) as exc:
        raise SettingError(f"{name}: may use only {', '.join('{' + f + '}' for f in fields)}, got {value!r}") from exc
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default).lower()
    if value not in choices:
        raise SettingError(f"{name}: expected one of {', '.join(choices)}, got {value!r}")
    return value


def database_from_url(name: str, url: str, *, pool_max_size: int = 0) -> dict[str, Any]:
    """Translate `sqlite:///path` or `postgres://user:pw@host:port/db` into a Django DATABASES entry.

    `pool_max_size` > 0 gives each PostgreSQL-using process a psycopg connection pool of that size.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parts.path)
        # sqlite:///relative/path and sqlite:////absolute/path, as SQLAlchemy spells them.
        if path.startswith("//"):
            path = path[1:]
        elif path.startswith("/"):
            path = path[1:]
        if not path:
            raise SettingError(f"{name}: sqlite URL needs a file path, got {url!r}")
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so two writers queue on the
                # busy timeout instead of failing with "database is locked" on upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    if scheme in {"postgres", "postgresql", "pgsql"}:
        if not parts.path.strip("/"):
            raise SettingError(f"{name}: PostgreSQL URL needs a database name, got {url!r}")
        try:
            port = parts.port
        except ValueError:
            raise SettingError(f"{name}: invalid port in {url!r}") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.strip("/")),
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            # Under ASGI Django runs every request in a thread of its own, so a persistent
            # (thread-local) connection is never reused and lingers until garbage collection:
            # with CONN_MAX_AGE > 0 a few busy workers exhausted max_connections. Django's
            # answer for ASGI is no persistent connections plus the driver's pool.
            "CONN_MAX_AGE": 0,
            # With a pool, statements run through `dicomsvc.sqlbatch` are prepared on first use
            # (threshold 0) and stay prepared on the pooled connection, planned once (generic
            # plan: they are all key look-ups and inserts, whose plan does not depend on the
            # values). Django's own queries bind on the client, are never prepared and are
            # planned per execution as before. Without a pool a prepared statement would not
            # outlive the request, so nothing is prepared.
            **(
                {
                    "OPTIONS": {
                        "pool": {"min_size": min(2, pool_max_size), "max_size": pool_max_size},
                        "prepare_threshold": 0,
                        "options": "-c plan_cache_mode=force_generic_plan",
                    }
                }
                if pool_max_size
                else {}
            ),
        }
    raise SettingError(f"{name}: unsupported scheme {parts.scheme!r} (use sqlite:/// or postgres://)")
