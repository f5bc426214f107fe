//! The `webhook` channel: one HTTP POST per digest, in one of four shapes (`json`, `slack`,
//! `discord`, `ntfy`).
//!
//! Every attempt for one digest and channel carries the same `Idempotency-Key`, so a receiver
//! can drop the copy sent again after a crash between sending and recording. With a secret, the
//! body is signed: `X-Storywatch-Signature: sha256=<hex HMAC-SHA256 of the body>`. Only a 2xx
//! answer counts; anything else (including a redirect, which is not followed because a POST
//! turned into a GET would lose the body) leaves the delivery pending for a retry.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tracing::debug;

use super::{NotifyError, Outgoing};
use crate::config::{WebhookConfig, WebhookFormat, redacted_url};
use crate::digest::chat::{to_discord, to_plain, to_slack};

/// The signature header's name.
pub const SIGNATURE_HEADER: &str = "X-Storywatch-Signature";

/// `sha256=<hex>` of the body under `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length, so the error branch is never taken; it returns an
    // unverifiable signature rather than panicking.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return "sha256=".to_string();
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The body and content type for `format`.
pub fn body_for(format: WebhookFormat, digest: &Outgoing<'_>) -> (Vec<u8>, &'static str) {
    let json = |value: serde_json::Value| {
        (
            serde_json::to_vec(&value).unwrap_or_default(),
            "application/json",
        )
    };
    let markdown = &digest.row.markdown;
    match format {
        WebhookFormat::Json => json(serde_json::json!({
            "digest_id": digest.row.id,
            "created_at": digest.row.created_at,
            "subject": digest.subject(),
            "digest": digest.model,
            "markdown": markdown,
        })),
        WebhookFormat::Slack => {
            let text = match &digest.model {
                Some(model) => to_slack(model),
                None => markdown
                    .chars()
                    .take(crate::digest::chat::SLACK_LIMIT)
                    .collect(),
            };
            json(serde_json::json!({ "text": text }))
        }
        WebhookFormat::Discord => {
            let content = match &digest.model {
                Some(model) => to_discord(model),
                None => markdown
                    .chars()
                    .take(crate::digest::chat::DISCORD_LIMIT)
                    .collect(),
            };
            json(serde_json::json!({
                "content": content,
                // Feed text must never ping anyone.
                "allowed_mentions": { "parse": [] },
            }))
        }
        WebhookFormat::Ntfy => {
            let text = match &digest.model {
                Some(model) => to_plain(model),
                None => markdown.clone(),
            };
            (text.into_bytes(), "text/plain; charset=utf-8")
        }
    }
}

/// A header value for any text: ASCII as is, anything else as an RFC 2047 encoded word (which
/// ntfy decodes).
fn header_text(text: &str) -> String {
    let flat: String = text.chars().filter(|c| !c.is_control()).collect();
    if flat.is_ascii() {
        flat
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(flat.as_bytes())
        )
    }
}

/// POSTs the digest.
pub(super) async fn deliver(
    config: &WebhookConfig,
    channel: &str,
    digest: &Outgoing<'_>,
) -> Result<(), NotifyError> {
    let error = |message: String| NotifyError::Webhook {
        url: redacted_url(&config.url),
        message,
    };
    let (body, content_type) = body_for(config.format, digest);
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout.min(std::time::Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(crate::pipeline::USER_AGENT)
        .build()
        .map_err(|err| error(format!("cannot create the HTTP client: {err}")))?;
    let mut request = client
        .post(&config.url)
        .header(reqwest::header::CONTENT_TYPE, content_type)
        .header("Idempotency-Key", digest.idempotency_key(channel));
    if let Some(secret) = &config.secret {
        request = request.header(SIGNATURE_HEADER, sign(secret.read()?.as_bytes(), &body));
    }
    if config.format == WebhookFormat::Ntfy {
        request = request.header("Title", header_text(&digest.subject()));
    }
    let response = request.body(body).send().await.map_err(|err| {
        let what = if err.is_timeout() {
            format!("no answer within {}s", config.timeout.as_secs())
        } else if err.is_connect() {
            "cannot connect; check the url and that the receiver is running".to_string()
        } else {
            // reqwest's message names the URL, which may carry the webhook's token.
            err.without_url().to_string()
        };
        error(what)
    })?;
    let status = response.status();
    if !status.is_success() {
        let snippet: String = response
            .text()
            .await
            .unwrap_or_default()
            .chars()
            .take(200)
            .collect();
        return Err(error(format!(
            "answered {status}{}{}",
            if snippet.is_empty() { "" } else { ": " },
            snippet.trim()
        )));
    }
    debug!(%status, "webhook accepted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bodies_have_each_services_shape() {
        let row = super::super::tests::row(3, "md");
        let out = Outgoing::new(&row, 0);
        let (json, kind) = body_for(WebhookFormat::Json, &out);
        assert_eq!(kind, "application/json");
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["digest_id"], 3);
        let (slack, _) = body_for(WebhookFormat::Slack, &out);
        assert!(serde_json::from_slice::<serde_json::Value>(&slack).unwrap()["text"].is_string());
        let (discord, _) = body_for(WebhookFormat::Discord, &out);
        let value: serde_json::Value = serde_json::from_slice(&discord).unwrap();
        assert!(value["content"].is_string());
        assert_eq!(value["allowed_mentions"]["parse"], serde_json::json!([]));
        let (ntfy, kind) = body_for(WebhookFormat::Ntfy, &out);
        assert_eq!(
            (ntfy.as_slice(), kind),
            (&b"md"[..], "text/plain; charset=utf-8")
        );
        assert_eq!(header_text("a — b"), "=?UTF-8?B?YSDigJQgYg==?=");
    }
}
