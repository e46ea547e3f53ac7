"""The sd_notify protocol, in a few lines: datagrams of ``KEY=value`` lines to $NOTIFY_SOCKET.

Our own small implementation instead of a library: the protocol is one sendto() on an AF_UNIX datagram
socket (an abstract socket when the path starts with '@'), and a library would add a dependency for that.
Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so the daemon runs the same from a terminal.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = None
        if address:
            # '@name' is a Linux abstract socket: a leading NUL byte in the kernel's eyes
            self.address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()  # the tick thread and the watchdog thread share the socket

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send one datagram of ``KEY=value`` lines; False (and a debug log) when it cannot be sent."""
        if self.address is None:
            return False
        try:
            with self._lock:
                if self._sock is None:
                    self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # never block the daemon on its supervisor: if the queue is full, this message is dropped
                self._sock.sendto("\n".join(lines).encode("utf-8"), socket.MSG_DONTWAIT, self.address)
        except OSError as exc:
            log.debug("sd_notify to %r failed: %s", self.address, exc)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={_one_line(status)}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={_one_line(status)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str = "stopping") -> bool:
        return self.notify("STOPPING=1", f"STATUS={_one_line(status)}")

    def close(self) -> None:
        with self._lock:
            if self._sock is not None:
                self._sock.close()
                self._sock = None


def watchdog_interval_s() -> float | None:
    """Half the watchdog timeout systemd asks for (WATCHDOG_USEC), when it is meant for this process."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6 / 2


def _one_line(text: str) -> str:
    return " ".join(text.split())
