"""The grading process's network: a namespace of its own with only loopback.

:func:`enter_loopback_netns` moves the *calling* process, for good, so only a process that
exists to grade calls it: the ``grade`` verb (each ``grade-all`` submission is one such
process). :func:`network_isolation` says what the current process's network is, for reports.
"""

from __future__ import annotations

import ctypes
import fcntl
import os
import socket
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def enter_loopback_netns() -> str | None:
    """Move this process into a new network namespace with only ``lo``, brought up.

    Returns None on success, or the reason it could not (not root, no CAP_SYS_ADMIN).
    Every process started afterwards, team commands and our own clients alike, shares it.
    """
    if _libc.unshare(_CLONE_NEWNET) != 0:
        return os.strerror(ctypes.get_errno())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        ifreq = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, _SIOCGIFFLAGS, ifreq))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | _IFF_UP))
    return None


def interfaces() -> list[str]:
    """The network interfaces this process's namespace has (``/sys/class/net`` would show the host's)."""
    return sorted(name for _, name in socket.if_nameindex())


def network_isolation() -> str:
    """One line for the report: is this process's network loopback only?"""
    names = interfaces()
    if names == ["lo"]:
        return "network: loopback only (own network namespace)"
    return (
        f"network: NOT isolated (interfaces: {', '.join(names)}); grade as root for a private "
        "network namespace with loopback only"
    )
