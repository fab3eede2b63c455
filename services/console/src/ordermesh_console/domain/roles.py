"""Staff roles and what each may do: viewer, operator, editor, admin — each role may do everything the one before may."""

from enum import IntEnum, StrEnum


class Role(StrEnum):
    """A staff member's role in the console."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    EDITOR = "editor"
    ADMIN = "admin"


class Permission(IntEnum):
    """What an action needs; a role holds every permission up to its own level."""

    VIEW = 0
    OPERATE = 1
    """Hold and release, child status, confirmations, tasks, mails, points confirmation, memo and labels, dead letters."""
    EDIT = 2
    """Edits, cancellations, split and merge (seed 003: only staff allowed to edit orders may edit)."""
    ADMINISTER = 3
    """Settings and staff accounts."""


_LEVEL = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.EDITOR: 2, Role.ADMIN: 3}


def allows(role: Role, permission: Permission) -> bool:
    """Whether a staff member with `role` may do what needs `permission`."""
    return _LEVEL[role] >= permission
