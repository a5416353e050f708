"""The roles a participant can hold in a cell (spec §8.1)."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    """Directory roles. ``casusverantwoordelijke`` is appointed per case, never in the directory."""

    VOORZITTER = "voorzitter"  # chair (the mayor)
    COORDINATOR = "coordinator"  # municipal prevention officer
    IO_POLITIE = "io_politie"  # police information officer
    DEELNEMER = "deelnemer"  # participating socio-preventive service
    CASUSVERANTWOORDELIJKE = "casusverantwoordelijke"  # case owner, a deelnemer appointed per case
    AANMELDER_EXTERN = "aanmelder_extern"  # external referrer: may refer, gets status only
    DPO = "dpo"  # data protection officer
    TOEZICHT = "toezicht"  # supervisor: audit export only
    HUB_OPERATOR = "hub_operator"  # runs the hub: no content, ever


# Roles that can be written into a directory entry.
DIRECTORY_ROLES = frozenset(Role) - {Role.CASUSVERANTWOORDELIJKE}
