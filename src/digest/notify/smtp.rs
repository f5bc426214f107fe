//! The `smtp` channel: one multipart/alternative e-mail per digest (the Markdown as
//! `text/plain`, the same digest as escaped HTML as `text/html`) to every recipient, through
//! `lettre`'s async SMTP client with rustls.
//!
//! The password is read from its file or variable at send time and handed straight to lettre;
//! it is never logged or kept. The `Message-ID` is derived from the digest and channel, so a
//! message re-sent after a crash is recognisably the same message.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tracing::debug;

use super::{NotifyError, Outgoing};
use crate::config::{SmtpConfig, SmtpTls};
use crate::digest::html::{escape_html, to_html};

/// Builds the e-mail for `digest` (public so tests and `digest show` can inspect it).
pub fn build_message(
    config: &SmtpConfig,
    channel: &str,
    digest: &Outgoing<'_>,
) -> Result<Message, NotifyError> {
    let mail_error = |what: &str, err: &dyn std::fmt::Display| {
        NotifyError::Mail(format!("{what}: {err}; fix it in the [[notify]] entry"))
    };
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|err| mail_error(&format!("from {:?}", config.from), &err))?;
    let domain = from.email.domain().to_string();
    let mut builder = Message::builder()
        .from(from)
        .subject(digest.subject())
        .message_id(Some(format!(
            "<{}@{domain}>",
            digest.idempotency_key(channel)
        )))
        .user_agent(crate::pipeline::USER_AGENT.to_string())
        .date(std::time::SystemTime::from(digest.row.created_at));
    for to in &config.to {
        let mailbox: Mailbox = to
            .parse()
            .map_err(|err| mail_error(&format!("recipient {to:?}"), &err))?;
        builder = builder.to(mailbox);
    }
    let html = match &digest.model {
        Some(model) => to_html(model),
        None => format!(
            "<!DOCTYPE html>\n<html><body><pre>{}</pre></body></html>",
            escape_html(&digest.row.markdown)
        ),
    };
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(digest.row.markdown.clone()),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|err| mail_error("building the message", &err))
}

fn transport(config: &SmtpConfig) -> Result<AsyncSmtpTransport<Tokio1Executor>, NotifyError> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
        .port(config.port)
        .timeout(Some(config.timeout));
    if config.tls != SmtpTls::None {
        let mut params = TlsParameters::builder(config.host.clone());
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|err| {
                NotifyError::Mail(format!(
                    "cannot read ca_file {}: {err}; point ca_file at a PEM certificate",
                    path.display()
                ))
            })?;
            let cert = Certificate::from_pem(&pem).map_err(|err| {
                NotifyError::Mail(format!(
                    "ca_file {} is not a PEM certificate: {err}",
                    path.display()
                ))
            })?;
            params = params.add_root_certificate(cert);
        }
        let params = params
            .build()
            .map_err(|err| NotifyError::Mail(format!("TLS setup failed: {err}")))?;
        builder = builder.tls(match config.tls {
            SmtpTls::Tls => Tls::Wrapper(params),
            _ => Tls::Required(params),
        });
    }
    if let (Some(user), Some(password)) = (&config.username, &config.password) {
        builder = builder
            .credentials(Credentials::new(user.clone(), password.read()?))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    Ok(builder.build())
}

/// Sends the digest e-mail.
pub(super) async fn deliver(
    config: &SmtpConfig,
    channel: &str,
    digest: &Outgoing<'_>,
) -> Result<(), NotifyError> {
    let message = build_message(config, channel, digest)?;
    let transport = transport(config)?;
    let server = format!("{}:{}", config.host, config.port);
    // lettre's timeout covers each network step; this bounds the whole conversation.
    let limit = config.timeout.saturating_mul(2) + Duration::from_secs(1);
    let sent = tokio::time::timeout(limit, transport.send(message))
        .await
        .map_err(|_| NotifyError::Smtp {
            server: server.clone(),
            message: format!("no answer within {}s", limit.as_secs()),
        })?;
    let response = sent.map_err(|err| NotifyError::Smtp {
        server: server.clone(),
        message: err.to_string(),
    })?;
    debug!(server, code = %response.code(), recipients = config.to.len(), "mail accepted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretSource;

    fn config() -> SmtpConfig {
        SmtpConfig {
            host: "127.0.0.1".into(),
            port: 2525,
            tls: SmtpTls::None,
            from: "storywatch <sw@example.org>".into(),
            to: vec!["a@example.org".into(), "b@example.org".into()],
            username: Some("u".into()),
            password: Some(SecretSource::Inline("hunter2".into())),
            ca_file: None,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn message_is_multipart_with_stable_id_and_no_secret() {
        let row = super::super::tests::row(7, "# hi <script>");
        let outgoing = Outgoing::new(&row, 0);
        let text = String::from_utf8(
            build_message(&config(), "mail", &outgoing)
                .unwrap()
                .formatted(),
        )
        .unwrap();
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains("text/plain") && text.contains("text/html"),
            "{text}"
        );
        assert!(
            text.contains("Message-ID: <storywatch-7-1767250800-mail@example.org>"),
            "{text}"
        );
        assert!(text.contains("&lt;script&gt;"), "{text}");
        assert!(!text.contains("hunter2"));
        assert!(!format!("{:?}", config()).contains("hunter2"));
    }
}
