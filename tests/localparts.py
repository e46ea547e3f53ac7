"""Real local servers for end-to-end tests: a chat-style JSON receiver and an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Receiver:
    """An HTTP endpoint that records apprise json:// posts; set ``status`` to make it fail."""

    server: ThreadingHTTPServer
    received: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    refused: int = 0

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "alerts") -> str:
        return f"json://127.0.0.1:{self.port}/{path}"

    def messages(self) -> list[str]:
        return [item.get("message", "") for item in self.received]

    def titles(self) -> list[str]:
        return [item.get("title", "") for item in self.received]


def start_receiver() -> Receiver:
    holder: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            receiver = holder["r"]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if receiver.status >= 400:
                receiver.refused += 1
                self.send_response(receiver.status)
                self.end_headers()
                return
            receiver.received.append(json.loads(body or b"{}"))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder["r"] = Receiver(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return holder["r"]


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class SmtpServer:
    controller: Controller
    mailbox: _Mailbox

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def url(self) -> str:
        return (f"mailto://monitor:secret@127.0.0.1:{self.port}?mode=insecure&from=monitor@example.org"
                f"&to=analyst@example.org&smtp=127.0.0.1")

    def subjects(self) -> list[str]:
        return [str(make_header(decode_header(m["Subject"] or ""))) for m in self.mailbox.messages]

    def bodies(self) -> list[str]:
        out = []
        for message in self.mailbox.messages:
            for part in message.walk():
                if part.get_content_maintype() == "text":
                    out.append(part.get_payload(decode=True).decode("utf-8", "replace"))
        return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_smtp() -> SmtpServer:
    mailbox = _Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), auth_require_tls=False,
                            auth_exclude_mechanism=[], authenticator=lambda *a: _auth_ok())
    controller.start()
    return SmtpServer(controller, mailbox)


def _auth_ok() -> Any:
    from aiosmtpd.smtp import AuthResult

    return AuthResult(success=True)
