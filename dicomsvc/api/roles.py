"""The roles file (Microsoft's roles.json format) and what a caller's roles allow.

`{"roles": [{"name", "dataActions", "notDataActions", "scopes"}]}`: a role grants its data
actions minus its not-data-actions, in its scopes. Beyond Microsoft, whose only scope is `/`,
a scope may be `/partitions/{name}`: the routes under that partition and nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dicomsvc.env import SettingError

READ = "read"
WRITE = "write"
DELETE = "delete"
EXPORT = "export"
MANAGE_EXTENDED_QUERY_TAGS = "manageExtendedQueryTags"
DATA_ACTIONS = frozenset({READ, WRITE, DELETE, EXPORT, MANAGE_EXTENDED_QUERY_TAGS})
ALL = "*"

GLOBAL_SCOPE = "/"
PARTITION_SCOPE = re.compile(r"/partitions/[^/\s]+")
_ROLE_KEYS = {"name", "dataActions", "notDataActions", "scopes", "roleScopes"}


@dataclass(frozen=True)
class Role:
    """A role of the roles file: the actions it grants and where."""

    name: str
    actions: frozenset[str]
    scopes: frozenset[str]

    def allows(self, *, action: str, scope: str) -> bool:
        return action in self.actions and (GLOBAL_SCOPE in self.scopes or scope in self.scopes)


Roles = Mapping[str, Role]


def route_scope(*, partition_name: str | None) -> str:
    """The scope a route lives in: its partition's, or `/` for a route outside any partition."""
    return GLOBAL_SCOPE if partition_name is None else f"/partitions/{partition_name}"


def roles_allow(*, roles: Roles | None, names: Iterable[str], action: str, scope: str) -> bool:
    """Whether any of the caller's roles grants `action` in `scope`.

    No roles file (None) means no authorization: every authenticated caller may do everything,
    as in Microsoft's server. A role name the file does not define grants nothing.
    """
    if roles is None:
        return True
    for name in names:
        role = roles.get(name)
        if role is not None and role.allows(action=action, scope=scope):
            return True
    return False


def _actions(where: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where} must be a list of data actions")
    unknown = [item for item in value if item != ALL and item not in DATA_ACTIONS]
    if unknown:
        expected = ", ".join(sorted(DATA_ACTIONS | {ALL}))
        raise ValueError(f"{where}: unknown data action {unknown[0]!r} (expected one of {expected})")
    return DATA_ACTIONS if ALL in value else frozenset(value)


def _scopes(where: str, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
        raise ValueError(f"{where} must be a non-empty list of scopes")
    for item in value:
        if item != GLOBAL_SCOPE and not PARTITION_SCOPE.fullmatch(item):
            raise ValueError(f"{where}: scope {item!r} is neither '/' nor '/partitions/{{name}}'")
    return frozenset(value)


def _role(index: int, entry: Any) -> Role:
    where = f"roles[{index}]"
    if not isinstance(entry, dict):
        raise ValueError(f"{where} must be an object")
    unknown = sorted(set(entry) - _ROLE_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key {unknown[0]!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}.name must be a non-empty string")
    where = f"role {name!r}"
    if "dataActions" not in entry:
        raise ValueError(f"{where}: dataActions is missing")
    if "scopes" in entry and "roleScopes" in entry:
        raise ValueError(f"{where}: give scopes or roleScopes, not both")
    scope_key = "roleScopes" if "roleScopes" in entry else "scopes"
    if scope_key not in entry:
        raise ValueError(f"{where}: scopes is missing")
    granted = _actions(f"{where}.dataActions", entry["dataActions"])
    denied = _actions(f"{where}.notDataActions", entry.get("notDataActions", []))
    return Role(name=name, actions=granted - denied, scopes=_scopes(f"{where}.{scope_key}", entry[scope_key]))


def roles_parse(document: Any) -> dict[str, Role]:
    """The roles of a parsed roles file; ValueError naming the first problem."""
    if not isinstance(document, dict) or not isinstance(document.get("roles"), list):
        raise ValueError('expected an object with a "roles" list')
    unknown = sorted(set(document) - {"roles", "$schema"})
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}")
    roles: dict[str, Role] = {}
    for index, entry in enumerate(document["roles"]):
        role = _role(index, entry)
        if role.name in roles:
            raise ValueError(f"role {role.name!r} is defined twice")
        roles[role.name] = role
    return roles


def roles_file_read(name: str, path: str) -> dict[str, Role] | None:
    """The roles of the file the setting `name` points at (None when unset); fails start-up loudly."""
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise SettingError(f"{name}: cannot read {path!r}: {exc}") from exc
    except ValueError as exc:
        raise SettingError(f"{name}: {path!r} is not valid JSON: {exc}") from exc
    try:
        return roles_parse(document)
    except ValueError as exc:
        raise SettingError(f"{name}: {path}: {exc}") from exc
