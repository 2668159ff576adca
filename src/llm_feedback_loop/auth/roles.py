"""Roles and what each may do: the one policy every endpoint's dependency reads.

admin      everything: export, delete, import tasks, train, promote, reload the served model, users and keys
annotator  chat for candidates, annotate, the queue, arena battles and votes; reads only its own feedback
viewer     the dashboard and every read; no export, no writes
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    annotator = "annotator"
    viewer = "viewer"


class Permission(StrEnum):
    chat = "chat"  # generate answers (the feedback service's chat, the inference server)
    annotate = "annotate"  # store feedback, take queue tasks, arena battles and votes
    read_own = "read_own"  # list feedback rows, only one's own unless `read` is held too
    read = "read"  # the dashboard, statistics, every feedback row, runs, versions, the leaderboard
    export = "export"  # datasets and manifests, the original's /export routes
    manage = "manage"  # delete rows, import tasks, training runs, promotion, serving reloads, users, keys


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.annotator: frozenset({Permission.chat, Permission.annotate, Permission.read_own}),
    Role.viewer: frozenset({Permission.read, Permission.read_own}),
}


def roles_with(permission: Permission) -> list[str]:
    return [role.value for role, held in ROLE_PERMISSIONS.items() if permission in held]


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise ValueError(f"unknown role {value!r}; choose one of {', '.join(r.value for r in Role)}") from None


def key_role_allowed(user_role: Role, key_role: Role) -> bool:
    """A key may carry the user's role or one whose permissions the user holds all of."""
    return ROLE_PERMISSIONS[key_role] <= ROLE_PERMISSIONS[user_role]
