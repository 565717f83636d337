"""Failure e-mails over SMTP, against a local SMTP server (aiosmtpd) whose certificate is signed
by a certificate authority made for the test: STARTTLS and implicit TLS deliver when that
authority is trusted and refuse when it is not, or when the host name is not the certificate's;
a login over plain text is refused at start-up unless `smtp_insecure` says it is meant."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message as Mail
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from subledger.adapters.sync.log import Message
from subledger.adapters.sync.notify import Notifier, NotifySettings, smtp_security
from subledger.api.settings import ConfigurationError, Settings
from subledger.api.sync import read_notifications
from tests.e2e.test_server import free_port

USER, PASSWORD = "notifier", "smtp-password-7c1e"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
MESSAGE = Message(
    id="msg_smtp_1",
    target="billy",
    lane="cus_1",
    seq=7,
    kind="invoice",
    source="evt_i1",
    dated="2026-01-05",
    payload={},
    status="failed",
    attempts=1,
    next_attempt_at=NOW,
    target_ids={},
    last_error="422 productId: not found",
    created_at=NOW,
    updated_at=NOW,
    sent_at=None,
)


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    server: ssl.SSLContext


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A certificate authority, and a server certificate it signed for `localhost` alone (no
    IP address), with the server's TLS context."""
    directory = tmp_path_factory.mktemp("tls")
    start, end = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("subledger test authority"))
        .issuer_name(_name("subledger test authority"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain, key_file = directory / "server.pem", directory / "server.key"
    chain.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key_file)
    return Certificates(ca_file, context)


@dataclass
class Mailbox:
    """A local SMTP server keeping the mails it receives, whether each came over TLS, and
    the logins it accepted."""

    mails: list[Mail] = field(default_factory=list)
    encrypted: list[bool] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    async def handle_DATA(self, server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.mails.append(message_from_bytes(envelope.content))
        self.encrypted.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 OK"

    def authenticate(
        self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and (data.login, data.password) == (
            USER.encode(),
            PASSWORD.encode(),
        ):
            self.logins.append(USER)
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def serve(mailbox: Mailbox, **options: Any) -> Controller:
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=mailbox.port,
        authenticator=mailbox.authenticate,
        **options,
    )
    controller.start()
    return controller


@pytest.fixture
def starttls_server(certificates: Certificates) -> Iterator[Mailbox]:
    """A server that speaks STARTTLS, and takes neither a mail nor a login before it."""
    mailbox = Mailbox()
    controller = serve(
        mailbox, tls_context=certificates.server, require_starttls=True, auth_require_tls=True
    )
    yield mailbox
    controller.stop()


@pytest.fixture
def implicit_server(certificates: Certificates) -> Iterator[Mailbox]:
    """A server that speaks TLS from the first byte (SMTPS). (aiosmtpd counts only STARTTLS
    as TLS for `auth_require_tls`; here every byte is encrypted already.)"""
    mailbox = Mailbox()
    controller = serve(mailbox, ssl_context=certificates.server, auth_require_tls=False)
    yield mailbox
    controller.stop()


@pytest.fixture
def plaintext_server() -> Iterator[Mailbox]:
    """A server with no TLS at all, that takes a login anyway."""
    mailbox = Mailbox()
    controller = serve(mailbox, auth_require_tls=False)
    yield mailbox
    controller.stop()


def mailer(port: int, host: str = "localhost", **options: Any) -> Notifier:
    return Notifier(
        NotifySettings(
            smtp_host=host,
            smtp_port=port,
            smtp_to=("finance@example.com",),
            timeout_seconds=5,
            **options,
        )
    )


def configured(tmp_path: Path, port: int, lines: str) -> Settings:
    config = tmp_path / "subledger.toml"
    config.write_text(
        f'[notifications]\nsmtp_host = "localhost"\nsmtp_port = {port}\n'
        f'smtp_to = ["finance@example.com"]\n{lines}'
    )
    return Settings(config=config)


def test_starttls_with_the_configured_ca_file_delivers_the_mail_encrypted(
    starttls_server: Mailbox, certificates: Certificates, tmp_path: Path
) -> None:
    (tmp_path / "ca.pem").write_bytes(certificates.ca_file.read_bytes())
    settings = configured(
        tmp_path,
        starttls_server.port,
        f'smtp_security = "starttls"\nsmtp_ca_file = "ca.pem"\nsmtp_user = "{USER}"\n'
        f'smtp_password = "{PASSWORD}"\n',
    )
    notify = read_notifications(settings)
    assert notify is not None and notify.smtp_ca_file == str(tmp_path / "ca.pem")
    Notifier(notify)(MESSAGE, "422 productId: not found")
    assert len(starttls_server.mails) == 1
    mail = starttls_server.mails[0]
    assert mail["Subject"] == "subledger: a invoice message to billy failed"
    assert "message_id: msg_smtp_1" in mail.get_payload()
    assert starttls_server.encrypted == [True]
    assert starttls_server.logins == [USER], "the login came after STARTTLS"


def test_starttls_refuses_a_server_whose_authority_is_not_trusted(
    starttls_server: Mailbox,
) -> None:
    with pytest.raises(RuntimeError, match="e-mail: SSLCertVerificationError"):
        mailer(starttls_server.port, smtp_security="starttls")(MESSAGE, "refused")
    assert starttls_server.mails == []


def test_starttls_refuses_a_host_name_the_certificate_is_not_for(
    starttls_server: Mailbox, certificates: Certificates
) -> None:
    """The certificate names `localhost`, not 127.0.0.1: trusting its authority is not enough."""
    notify = mailer(
        starttls_server.port,
        host="127.0.0.1",
        smtp_security="starttls",
        smtp_ca_file=str(certificates.ca_file),
    )
    with pytest.raises(RuntimeError, match=r"SSLCertVerificationError.*mismatch"):
        notify(MESSAGE, "refused")
    assert starttls_server.mails == []


def test_implicit_tls_delivers_with_the_ca_file_and_refuses_without_it(
    implicit_server: Mailbox, certificates: Certificates
) -> None:
    with pytest.raises(RuntimeError, match="SSLCertVerificationError"):
        mailer(implicit_server.port, smtp_security="implicit")(MESSAGE, "refused")
    assert implicit_server.mails == []
    trusted = mailer(
        implicit_server.port,
        smtp_security="implicit",
        smtp_ca_file=str(certificates.ca_file),
        smtp_user=USER,
        smtp_password=PASSWORD,
    )
    trusted(MESSAGE, "422 productId: not found")
    assert len(implicit_server.mails) == 1 and implicit_server.encrypted == [True]
    assert implicit_server.logins == [USER]


def test_port_465_means_implicit_tls_and_smtp_starttls_keeps_its_meaning() -> None:
    assert smtp_security(None, None, 465) == "implicit"
    assert smtp_security(None, None, 25) == "none"
    assert smtp_security(None, True, 587) == "starttls"
    assert smtp_security(None, False, 587) == "none"
    assert smtp_security("implicit", None, 2465) == "implicit"
    with pytest.raises(ValueError, match="disagrees"):
        smtp_security("starttls", False, 587)
    with pytest.raises(ValueError, match="one of starttls, implicit, none"):
        smtp_security("tls", None, 587)


def test_a_login_without_encryption_is_refused_at_start_up(tmp_path: Path) -> None:
    login = f'smtp_user = "{USER}"\nsmtp_password = "{PASSWORD}"\n'
    for spelled in ("", "smtp_starttls = false\n", 'smtp_security = "none"\n'):
        with pytest.raises(ConfigurationError, match="smtp_insecure = true"):
            read_notifications(configured(tmp_path, 2525, login + spelled))
    starttls = read_notifications(configured(tmp_path, 2525, login + "smtp_starttls = true\n"))
    assert starttls is not None and starttls.smtp_security == "starttls"


def test_a_login_over_plain_text_is_made_only_when_smtp_insecure_says_so(
    plaintext_server: Mailbox, tmp_path: Path
) -> None:
    refused = mailer(plaintext_server.port, smtp_user=USER, smtp_password=PASSWORD)
    with pytest.raises(RuntimeError, match="PlaintextLoginError"):
        refused(MESSAGE, "refused")
    assert plaintext_server.mails == [] and plaintext_server.logins == []

    settings = configured(
        tmp_path,
        plaintext_server.port,
        f'smtp_user = "{USER}"\nsmtp_password = "{PASSWORD}"\nsmtp_insecure = true\n',
    )
    notify = read_notifications(settings)
    assert notify is not None and notify.smtp_security == "none" and notify.smtp_insecure
    Notifier(notify)(MESSAGE, "422 productId: not found")
    assert len(plaintext_server.mails) == 1 and plaintext_server.encrypted == [False]
    assert plaintext_server.logins == [USER]


def test_a_relay_without_login_still_takes_mail_in_plain_text(plaintext_server: Mailbox) -> None:
    mailer(plaintext_server.port)(MESSAGE, "422 productId: not found")
    assert len(plaintext_server.mails) == 1 and plaintext_server.logins == []


def test_notification_settings_that_cannot_work_are_refused_at_start_up(tmp_path: Path) -> None:
    for lines, said in (
        ('smtp_tls = "implicit"\n', "notifications.smtp_tls: unknown key"),
        ('smtp_security = "starttls"\nsmtp_ca_file = "missing.pem"\n', "missing.pem"),
        ('smtp_security = "ssl"\n', "smtp_security: must be 'starttls', 'implicit' or 'none'"),
        ('smtp_insecure = "yes"\n', "smtp_insecure: must be true or false"),
    ):
        with pytest.raises(ConfigurationError, match=said):
            read_notifications(configured(tmp_path, 2525, lines))
    (tmp_path / "broken.pem").write_text("not a certificate\n")
    with pytest.raises(ConfigurationError, match=r"broken\.pem"):
        read_notifications(configured(tmp_path, 2525, 'smtp_ca_file = "broken.pem"\n'))
