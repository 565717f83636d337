"""Notifications of a message that failed: a webhook (JSON over HTTP POST) and, where configured,
an e-mail over SMTP. What they carry is the message's id, target, kind, customer and the
target's error: never a credential.

The e-mail goes over TLS unless told otherwise: STARTTLS (`smtp_security = "starttls"`) or TLS
from the first byte (`"implicit"`, SMTPS, port 465), each checking the server's certificate
and host name against the system's certificate authorities, or against `smtp_ca_file` alone
for a private one. `"none"` sends in plain text, which is fine for a relay on the same host
but never for a password: a login over plain text is refused unless `smtp_insecure` says it
is meant (`check`, at start-up; and again before sending, for settings made otherwise).
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Final, Literal, cast

import httpx

from subledger.adapters.sync.log_records import Message

Security = Literal["starttls", "implicit", "none"]
SECURITIES: Final[tuple[Security, ...]] = ("starttls", "implicit", "none")
#: The port of SMTP over TLS from the first byte (SMTPS, RFC 8314).
IMPLICIT_TLS_PORT: Final = 465


class PlaintextLoginError(smtplib.SMTPException):
    """A login to an SMTP server that would send the password in plain text."""


@dataclass(frozen=True)
class NotifySettings:
    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "subledger@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_security: Security = "none"
    #: A file of PEM certificates trusted in place of the system's (a private authority).
    smtp_ca_file: str | None = None
    #: Allows a login with `smtp_security = "none"`: the password crosses in plain text.
    smtp_insecure: bool = False
    timeout_seconds: float = 10.0


def smtp_security(security: Any, starttls: Any, port: int) -> Security:
    """The SMTP security the configuration asks for: `smtp_security` when given; else
    `starttls` when `smtp_starttls = true` (its older spelling); else `implicit` on port 465;
    else `none`. Raises ValueError for a value it does not know or two that disagree."""
    if starttls is not None and not isinstance(starttls, bool):
        raise ValueError(f"smtp_starttls must be true or false (got {starttls!r})")
    if security is None:
        if starttls:
            return "starttls"
        return "implicit" if port == IMPLICIT_TLS_PORT else "none"
    if security not in SECURITIES:
        raise ValueError(f"smtp_security must be one of {', '.join(SECURITIES)} (got {security!r})")
    if starttls is not None and starttls != (security == "starttls"):
        raise ValueError(
            f"smtp_starttls = {str(starttls).lower()} disagrees with smtp_security ="
            f" {security!r}: keep smtp_security alone"
        )
    return cast(Security, security)


def check(settings: NotifySettings) -> None:
    """Refuse, with what to do about it, settings that would log in over plain text; and
    read `smtp_ca_file`, so that a missing or broken one is said at start-up (OSError)."""
    if settings.smtp_user and settings.smtp_security == "none" and not settings.smtp_insecure:
        raise ValueError(
            "smtp_user is set but the connection is not encrypted (smtp_security = 'none'):"
            " set smtp_security = 'starttls' or 'implicit', or smtp_insecure = true to send"
            " the password in plain text"
        )
    if settings.smtp_ca_file is not None:
        tls_context(settings.smtp_ca_file)


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context that checks the server's certificate and host name: against
    `ca_file` alone when given, else against the system's authorities."""
    return ssl.create_default_context(cafile=ca_file)


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
        self.send(
            document,
            subject=f"subledger: a {document['kind']} message to {document['target']} failed",
            advice="Fix the cause, then retry it: POST /v1/sync/messages/"
            f"{document['message_id']}/retry",
        )

    def send(self, document: dict[str, Any], subject: str, advice: str) -> None:
        """Tell the webhook (the document as JSON) and the mailbox (a mail listing it, then
        `advice`), each that is configured; raise what went wrong with either."""
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
                self._mail(document, subject, advice)
            except (OSError, smtplib.SMTPException) as problem:
                problems.append(f"e-mail: {type(problem).__name__}: {problem}")
        if problems:
            raise RuntimeError("; ".join(problems))

    def _mail(self, document: dict[str, Any], subject: str, advice: str) -> None:
        mail = EmailMessage()
        mail["Subject"] = subject
        mail["From"] = self.settings.smtp_from
        mail["To"] = ", ".join(self.settings.smtp_to)
        mail.set_content(
            "\n".join(f"{name}: {value}" for name, value in document.items()) + f"\n\n{advice}\n"
        )
        with self._connect() as smtp:
            if self.settings.smtp_user:
                smtp.login(self.settings.smtp_user, self.settings.smtp_password or "")
            smtp.send_message(mail)

    def _connect(self) -> smtplib.SMTP:
        """A connection to the SMTP server, encrypted as the settings say, before anything
        (a login, a mail) is sent on it."""
        settings, host = self.settings, self.settings.smtp_host or ""
        timeout = settings.timeout_seconds
        if settings.smtp_security == "implicit":
            context = tls_context(settings.smtp_ca_file)
            return smtplib.SMTP_SSL(host, settings.smtp_port, timeout=timeout, context=context)
        if settings.smtp_user and settings.smtp_security == "none" and not settings.smtp_insecure:
            raise PlaintextLoginError(
                "no login over an unencrypted connection: set smtp_security, or smtp_insecure"
            )
        smtp = smtplib.SMTP(host, settings.smtp_port, timeout=timeout)
        if settings.smtp_security == "starttls":
            try:
                smtp.starttls(context=tls_context(settings.smtp_ca_file))
            except BaseException:
                smtp.close()
                raise
        return smtp
