"""Readiness for systemd (``Type=notify``): one datagram to ``$NOTIFY_SOCKET``, no dependency.

The protocol is sd_notify(3): newline-separated ``KEY=VALUE`` assignments sent as one datagram
to the AF_UNIX socket systemd names in the environment (a leading ``@`` means the abstract
namespace). Without the variable (not started by systemd) nothing is sent.
"""

from __future__ import annotations

import os
import socket

NOTIFY_SOCKET_ENV = "NOTIFY_SOCKET"


def sd_notify(*assignments: str) -> bool:
    """Tell the service manager ``assignments`` (e.g. ``READY=1``); False when none listens."""
    address = os.environ.get(NOTIFY_SOCKET_ENV)
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(assignments).encode("utf-8"))
    except OSError:
        return False  # readiness is a courtesy: a manager that went away does not stop the service
    return True
