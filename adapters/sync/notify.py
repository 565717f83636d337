"""Notifications of a message that failed: a webhook (JSON over HTTP POST) and, where configured,
an e-mail over SMTP. What they carry is the message's id, target, kind, customer and the
target's error: never a credential."""

from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx

from adapters.sync.log import Message


@dataclass(frozen=True)
class NotifySettings:
    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "subledger@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = False
    timeout_seconds: float = 10.0


def failure_document(message: Message, error: str) -> dict[str, Any]:
    return {
        "event": "sync.message.failed",
        "message_id": message.id,
        "target": message.target,
        "kind": message.kind,
        "customer_id": message.lane or None,
        "source": message.source,
        "attempts": message.attempts,
        "error": error,
    }


class Notifier:
    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings

    def __call__(self, message: Message, error: str) -> None:
        document = failure_document(message, error)
        problems = []
        if self.settings.webhook_url:
            try:
                response = httpx.post(
                    self.settings.webhook_url, json=document, timeout=self.settings.timeout_seconds
                )
                response.raise_for_status()
            except httpx.HTTPError as problem:
                problems.append(f"webhook: {type(problem).__name__}: {problem}")
        if self.settings.smtp_host and self.settings.smtp_to:
            try:
                self._mail(document)
            except (OSError, smtplib.SMTPException) as problem:
                problems.append(f"e-mail: {type(problem).__name__}: {problem}")
        if problems:
            raise RuntimeError("; ".join(problems))

    def _mail(self, document: dict[str, Any]) -> None:
        mail = EmailMessage()
        mail["Subject"] = f"subledger: a {document['kind']} message to {document['target']} failed"
        mail["From"] = self.settings.smtp_from
        mail["To"] = ", ".join(self.settings.smtp_to)
        mail.set_content(
            "\n".join(f"{name}: {value}" for name, value in document.items())
            + "\n\nFix the cause, then retry it: POST /v1/sync/messages/"
            + f"{document['message_id']}/retry\n"
        )
        with smtplib.SMTP(
            self.settings.smtp_host or "",
            self.settings.smtp_port,
            timeout=self.settings.timeout_seconds,
        ) as smtp:
            if self.settings.smtp_starttls:
                smtp.starttls()
            if self.settings.smtp_user:
                smtp.login(self.settings.smtp_user, self.settings.smtp_password or "")
            smtp.send_message(mail)
