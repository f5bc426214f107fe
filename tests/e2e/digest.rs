//! Digest delivery end to end: the smtp channel against a real SMTP server on 127.0.0.1 (plain,
//! STARTTLS, implicit TLS), the webhook channel in each format against the local HTTP server,
//! retries, the digest and export commands, and crash tests that kill -9 the daemon mid-delivery
//! (a hanging webhook; an e-mail the SMTP server has, before and after its 250) and check every
//! channel received every digest once: exactly once for files, at least once under one
//! Idempotency-Key or Message-ID for webhooks and e-mail.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use jiff::Timestamp;
use storywatch::config::FeedConfig;
use storywatch::item::Item;
use storywatch::store::{FetchedPoll, Store};
use storywatch::story::{Verdict, VerdictKind};

use crate::smtp_server::{SmtpMode, SmtpServer, Stall};
use crate::support::{
    Behaviour, Daemon, Response, TestServer, digest_files, eventually, fixture, storywatch,
    success, write_config,
};

const BASELINE: &str = "002_8c022bc2c889c5a5";

/// Stores items with verdicts straight into the test's database, as a poll would, so channel
/// tests do not depend on the matcher's judgement.
fn seed(dir: &Path, items: &[(&str, &str, VerdictKind, &str)]) {
    let mut store = Store::open(&dir.join("storywatch.db")).unwrap();
    store
        .sync_feeds(&[FeedConfig {
            url: "http://127.0.0.1:9/seeded.xml".into(),
            interval: Duration::from_secs(1800),
            title: None,
        }])
        .unwrap();
    let feed_id = store.active_feeds().unwrap()[0].id;
    let batch: Vec<(Item, Verdict)> = items
        .iter()
        .map(|(key, title, kind, link)| {
            (
                Item {
                    dedup_key: key.to_string(),
                    title: title.to_string(),
                    summary: format!("{title} — a summary long enough to be a sentence here."),
                    content: String::new(),
                    link: Some(link.to_string()),
                    published: Some(Timestamp::now()),
                    source: Some("Wire <Desk>".into()),
                },
                Verdict {
                    verdict: *kind,
                    score: 0.9,
                    baseline: Some(BASELINE.into()),
                    why: vec!["terms: fentanyl, precursor".into()],
                },
            )
        })
        .collect();
    let now = Timestamp::now();
    store
        .record_fetched(&FetchedPoll {
            feed_id,
            story: "US–China fentanyl cooperation",
            feed_title: Some("Seeded"),
            validators: &Default::default(),
            items: &batch,
            more_verdicts: &[],
            now,
            next_poll_at: now,
            background_before: None,
            interval: None,
            sign: &|item| storywatch::story::neardup::Signature::of(&item.title, &item.summary),
        })
        .unwrap();
}

fn hostile_items() -> Vec<(&'static str, &'static str, VerdictKind, &'static str)> {
    vec![
        (
            "1",
            "<script>alert(1)</script> China adds fentanyl precursors to control list",
            VerdictKind::FollowUp,
            "https://news.example/1?a=1&b=2",
        ),
        (
            "2",
            "US charges chemical firm over fentanyl precursor sales",
            VerdictKind::FollowUp,
            "javascript:alert(2)",
        ),
        (
            "3",
            "Recap of the Beijing counternarcotics talks",
            VerdictKind::ReReport,
            "https://news.example/3",
        ),
    ]
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut full = vec!["--config", "storywatch.toml"];
    full.extend_from_slice(args);
    storywatch(dir, &full, None)
}

/// Replaces the `[digest]` lines `write_config` wrote.
pub(crate) fn set_digest(dir: &Path, lines: &str) {
    let path = dir.join("storywatch.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "[digest]\nat = \"07:00\"\ntimezone = \"Europe/London\"\n",
        &format!("[digest]\n{lines}\n"),
    );
    std::fs::write(path, text).unwrap();
}

/// The decoded text of each MIME part of a received message, keyed by content type.
fn mime_parts(data: &str) -> BTreeMap<String, String> {
    let boundary = data
        .split("boundary=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("multipart boundary")
        .to_string();
    let mut parts = BTreeMap::new();
    for part in data.split(&format!("--{boundary}")).skip(1) {
        let Some((head, body)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        let head_lower = head.to_ascii_lowercase();
        let kind = head_lower
            .lines()
            .find_map(|l| l.strip_prefix("content-type: "))
            .map(|v| v.split(';').next().unwrap().trim().to_string())
            .unwrap_or_default();
        let text = if head_lower.contains("content-transfer-encoding: base64") {
            let compact: String = body.split_whitespace().collect();
            String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(compact)
                    .unwrap(),
            )
            .unwrap()
        } else if head_lower.contains("content-transfer-encoding: quoted-printable") {
            quoted_printable(body)
        } else {
            body.to_string()
        };
        parts.insert(kind, text);
    }
    parts
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 3 <= bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// A header's value with folded lines joined and RFC 2047 `=?utf-8?b?…?=` words decoded.
fn decode_header(data: &str, name: &str) -> String {
    let prefix = format!("{name}: ");
    let mut lines = data.lines().skip_while(|l| !l.starts_with(&prefix));
    let mut raw = lines.next().unwrap_or("")[prefix.len()..].to_string();
    for line in lines.take_while(|l| l.starts_with([' ', '\t'])) {
        raw.push_str(line);
    }
    let mut out = String::new();
    let mut previous_encoded = false;
    for (index, token) in raw.split(' ').enumerate() {
        let lower = token.to_ascii_lowercase();
        if lower.starts_with("=?utf-8?b?") && token.ends_with("?=") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(&token[10..token.len() - 2])
                .unwrap();
            if index > 0 && !previous_encoded {
                out.push(' ');
            }
            out.push_str(&String::from_utf8(bytes).unwrap());
            previous_encoded = true;
        } else {
            if index > 0 {
                out.push(' ');
            }
            out.push_str(token);
            previous_encoded = false;
        }
    }
    out
}

fn smtp_notify(server: &SmtpServer, tls: &str, extra: &str) -> String {
    format!(
        "[[notify]]\nkind = \"smtp\"\nname = \"mail\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"{tls}\"\n\
         from = \"storywatch <sw@example.org>\"\nto = [\"a@example.org\", \"b@example.org\"]\n\
         username = \"sw\"\npassword_file = \"smtp.pass\"\ntimeout = \"5s\"\n{extra}\n",
        server.port
    )
}

#[test]
fn smtp_sends_one_multipart_mail_to_every_recipient_with_escaped_html() {
    let server = SmtpServer::start(SmtpMode::Plain);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("smtp.pass"), "s3cret pass\n").unwrap();
    write_config(dir.path(), &[], &smtp_notify(&server, "none", ""));
    seed(dir.path(), &hostile_items());

    // Debug logging on: the password must still not appear anywhere.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storywatch"))
        .args(["--config", "storywatch.toml", "digest", "--now"])
        .current_dir(dir.path())
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");

    let mails = server.mails();
    assert_eq!(mails.len(), 1, "one message for all recipients");
    let mail = &mails[0];
    assert_eq!(mail.from, "sw@example.org");
    assert_eq!(mail.rcpt, vec!["a@example.org", "b@example.org"]);
    let (mechanism, user, password) = mail.auth.clone().expect("authenticated");
    assert_eq!((user.as_str(), password.as_str()), ("sw", "s3cret pass"));
    assert!(mechanism == "PLAIN" || mechanism == "LOGIN");
    assert!(!mail.tls);

    let data = &mail.data;
    assert!(data.contains("multipart/alternative"), "{data}");
    assert!(data.contains("Subject: "), "{data}");
    assert!(data.contains("Message-ID: <storywatch-1-"), "{data}");
    let parts = mime_parts(data);
    let plain = &parts["text/plain"];
    let html = &parts["text/html"];
    assert!(plain.contains("\\<script\\>alert"), "{plain}");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{html}"
    );
    assert!(
        html.contains("href=\"https://news.example/1?a=1&amp;b=2\""),
        "{html}"
    );
    assert!(!html.contains("javascript:"), "{html}");
    assert!(html.contains("Wire &lt;Desk&gt;"), "{html}");
    assert!(html.contains("Re-reports and related coverage"), "{html}");
    assert!(html.contains("Following up: <em>"), "{html}");

    // The subject names the count and the story (RFC 2047-encoded: it has non-ASCII).
    let subject = decode_header(data, "Subject");
    assert_eq!(
        subject,
        "storywatch: 2 new developments — US–China fentanyl cooperation"
    );
}

#[test]
fn smtp_password_from_the_environment_and_never_in_clear_off_loopback() {
    let server = SmtpServer::start(SmtpMode::Plain);
    let dir = tempfile::tempdir().unwrap();
    let notify = smtp_notify(&server, "none", "").replace(
        "password_file = \"smtp.pass\"",
        "password_env = \"SW_E2E_SMTP_PASS\"",
    );
    write_config(dir.path(), &[], &notify);
    seed(dir.path(), &hostile_items());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storywatch"))
        .args(["--config", "storywatch.toml", "digest", "--now"])
        .current_dir(dir.path())
        .env("SW_E2E_SMTP_PASS", "env pass 42")
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("env pass 42"), "{stderr}");
    let mails = server.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mails[0].auth.as_ref().map(|a| a.2.as_str()),
        Some("env pass 42")
    );

    // The same entry aimed at a host off this machine would send the password in clear text:
    // refused at start-up, naming the line and the fix.
    write_config(
        dir.path(),
        &[],
        &notify.replace("host = \"127.0.0.1\"", "host = \"smtp.example.com\""),
    );
    let refused = run(dir.path(), &["check"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("storywatch.toml:")
            && stderr.contains("in clear text; use tls = \"starttls\""),
        "{stderr}"
    );
}

#[test]
fn the_stdout_channel_prints_the_digest_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[], "[[notify]]\nkind = \"stdout\"\n");
    seed(dir.path(), &hostile_items());
    let printed = success(&run(dir.path(), &["digest", "--now"]));
    let stored = success(&run(dir.path(), &["digest", "show", "1"]));
    assert_eq!(printed, stored);
    assert!(
        printed.starts_with("# US–China fentanyl cooperation — storywatch digest")
            && printed.contains("\\<script\\>alert(1)"),
        "{printed}"
    );
    let list = success(&run(dir.path(), &["digest", "list"]));
    assert!(list.contains("stdout: delivered"), "{list}");
}

#[test]
fn smtp_over_starttls_and_implicit_tls_trusts_only_the_given_certificate() {
    for (mode, tls) in [
        (SmtpMode::Starttls, "starttls"),
        (SmtpMode::Implicit, "tls"),
    ] {
        let server = SmtpServer::start(mode);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp.pass"), "pw").unwrap();
        std::fs::write(dir.path().join("ca.pem"), &server.cert_pem).unwrap();

        // Without the certificate the self-signed server is refused; nothing falls back to
        // plain text and the delivery stays pending.
        write_config(dir.path(), &[], &smtp_notify(&server, tls, ""));
        seed(dir.path(), &hostile_items());
        let refused = run(dir.path(), &["digest", "--now"]);
        assert!(!refused.status.success(), "{tls}: untrusted cert accepted");
        assert!(
            String::from_utf8_lossy(&refused.stderr).contains("stay pending"),
            "{}",
            String::from_utf8_lossy(&refused.stderr)
        );
        assert!(server.mails().is_empty());

        // Trusting it, the pending delivery goes out over TLS.
        write_config(
            dir.path(),
            &[],
            &smtp_notify(&server, tls, "ca_file = \"ca.pem\""),
        );
        let resent = success(&run(
            dir.path(),
            &["digest", "resend", "1", "--channel", "mail"],
        ));
        assert!(resent.contains("delivered to mail"), "{resent}");
        let mails = server.mails();
        assert_eq!(mails.len(), 1, "{tls}");
        assert!(mails[0].tls, "{tls}: sent in the clear");
        assert_eq!(mails[0].auth.as_ref().unwrap().2, "pw");
    }
}

pub(crate) fn webhook_notify(name: &str, url: &str, format: &str, extra: &str) -> String {
    format!(
        "[[notify]]\nkind = \"webhook\"\nname = \"{name}\"\nurl = \"{url}\"\nformat = \"{format}\"\ntimeout = \"5s\"\n{extra}\n"
    )
}

#[test]
fn webhooks_post_each_format_signed_with_an_idempotency_key() {
    let server = TestServer::start();
    for path in ["/json", "/slack", "/discord", "/ntfy"] {
        server.route(path, Response::status(204));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook.key"), "k3y\n").unwrap();
    let notify = [
        webhook_notify(
            "j",
            &server.url("/json"),
            "json",
            "secret_file = \"hook.key\"",
        ),
        webhook_notify("s", &server.url("/slack"), "slack", ""),
        webhook_notify("d", &server.url("/discord"), "discord", ""),
        webhook_notify("n", &server.url("/ntfy"), "ntfy", ""),
    ]
    .concat();
    write_config(dir.path(), &[], &notify);
    seed(dir.path(), &hostile_items());
    success(&run(dir.path(), &["digest", "--now"]));

    let json = &server.requests_for("/json")[0];
    let signature = json.header("x-storywatch-signature").unwrap();
    assert_eq!(
        signature,
        storywatch::digest::notify::sign(b"k3y", &json.body)
    );
    let key = json.header("idempotency-key").unwrap();
    assert!(
        key.starts_with("storywatch-1-") && key.ends_with("-j"),
        "{key}"
    );
    let body: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
    assert_eq!(body["digest_id"], 1);
    let sections = body["digest"]["sections"].as_array().unwrap();
    assert_eq!(sections[0]["baseline"]["id"], BASELINE);
    let entries = sections[0]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(
        entries.iter().any(|e| e["link"].is_null()),
        "javascript: link dropped"
    );
    assert_eq!(body["digest"]["compact"]["re_reports"], 1);
    assert_eq!(body["digest"]["footer"]["feeds_polled"], 0);
    assert!(body["markdown"].as_str().unwrap().contains("Following up"));

    let slack = &server.requests_for("/slack")[0];
    assert!(slack.header("x-storywatch-signature").is_none());
    let text = serde_json::from_slice::<serde_json::Value>(&slack.body).unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(text.contains("&lt;script&gt;"), "{text}");
    assert!(text.contains("<https://news.example/1?a=1&b=2|"), "{text}");

    let discord: serde_json::Value =
        serde_json::from_slice(&server.requests_for("/discord")[0].body).unwrap();
    let content = discord["content"].as_str().unwrap();
    assert!(content.chars().count() <= 2000 && content.contains("storywatch: 2 new developments"));

    let ntfy = &server.requests_for("/ntfy")[0];
    assert!(
        ntfy.header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(ntfy.header("title").unwrap().starts_with("=?UTF-8?B?"));
    let text = String::from_utf8(ntfy.body.clone()).unwrap();
    assert!(text.starts_with("2 new developments"), "{text}");
    assert!(text.contains("<script>"), "plain text is not HTML: {text}");
}

#[test]
fn a_failing_webhook_stays_pending_and_is_delivered_once_later() {
    let server = TestServer::start();
    server.route("/hook", Response::status(500));
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &[],
        &webhook_notify("hook", &server.url("/hook"), "json", ""),
    );
    set_digest(
        dir.path(),
        "at = \"07:00\"\ntimezone = \"UTC\"\nretry = \"1s\"",
    );
    seed(dir.path(), &hostile_items());

    let failed = run(dir.path(), &["digest", "--now"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("stay pending") && stderr.contains("500"),
        "{stderr}"
    );
    let list = success(&run(dir.path(), &["digest", "list"]));
    assert!(list.contains("file: delivered"), "{list}");
    assert!(list.contains("hook: pending (1 attempts)"), "{list}");

    server.route("/hook", Response::status(200));
    std::thread::sleep(Duration::from_millis(1100));
    success(&run(dir.path(), &["digest", "--now"]));

    let seen = server.requests_for("/hook");
    let mut ok_per_key: BTreeMap<String, usize> = BTreeMap::new();
    for request in &seen {
        if request.status == 200 {
            *ok_per_key
                .entry(request.header("idempotency-key").unwrap().to_string())
                .or_default() += 1;
        }
    }
    assert_eq!(ok_per_key.len(), 2, "{ok_per_key:?}");
    assert!(ok_per_key.values().all(|n| *n == 1), "{ok_per_key:?}");
    // The failed attempt and its successful retry carried the same key.
    assert_eq!(
        seen[0].header("idempotency-key"),
        seen[1].header("idempotency-key")
    );
    let list = success(&run(dir.path(), &["digest", "list"]));
    assert!(!list.contains("pending"), "{list}");
}

#[test]
fn digest_list_show_resend_and_atom_export() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[], "");
    seed(dir.path(), &hostile_items());
    success(&run(dir.path(), &["digest", "--now"]));

    let list = success(&run(dir.path(), &["digest", "list"]));
    assert!(
        list.contains("3 matches") && list.contains("file: delivered"),
        "{list}"
    );
    let shown = success(&run(dir.path(), &["digest", "show", "1"]));
    let files = digest_files(dir.path());
    assert!(
        files.len() == 1 && files[0].starts_with(&shown),
        "{files:?}"
    );
    let html = success(&run(
        dir.path(),
        &["digest", "show", "1", "--format", "html"],
    ));
    assert!(
        html.starts_with("<!DOCTYPE html>") && !html.contains("<script"),
        "{html}"
    );
    let json = success(&run(
        dir.path(),
        &["digest", "show", "1", "--format", "json"],
    ));
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["story"], "US–China fentanyl cooperation");

    std::fs::remove_dir_all(dir.path().join("digests")).unwrap();
    let resent = success(&run(
        dir.path(),
        &["digest", "resend", "1", "--channel", "file"],
    ));
    assert!(resent.contains("delivered to file"), "{resent}");
    assert_eq!(digest_files(dir.path()), files);

    let unknown = run(
        dir.path(),
        &["digest", "resend", "1", "--channel", "pigeon"],
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("the channels are: file"));
    let missing = run(dir.path(), &["digest", "show", "42"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("digest list"));
    // The old spellings still work.
    assert!(run(dir.path(), &["digest", "--dry-run"]).status.success());

    success(&run(
        dir.path(),
        &["export", "atom", "--output", "matches.atom"],
    ));
    let xml = std::fs::read_to_string(dir.path().join("matches.atom")).unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut entries = 0;
    loop {
        match reader.read_event().expect("well-formed Atom") {
            quick_xml::events::Event::Start(e) if e.name().into_inner() == "entry" => entries += 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(entries, 3);
    assert!(xml.contains("xmlns=\"http://www.w3.org/2005/Atom\""));
    assert!(
        !xml.contains("<script") && !xml.contains("javascript:"),
        "{xml}"
    );
}

#[test]
fn check_lists_channels_and_fails_on_an_unreadable_secret() {
    let dir = tempfile::tempdir().unwrap();
    // Slack and Discord carry the webhook's token in the path: no output may show it.
    write_config(
        dir.path(),
        &[],
        &webhook_notify(
            "hook",
            "http://127.0.0.1:9/services/T0/B0/s3cretpath?token=t0ken",
            "slack",
            "secret_env = \"SW_E2E_HOOK_SECRET\"",
        ),
    );
    let out = run(dir.path(), &["check"]);
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("SW_E2E_HOOK_SECRET is not set"), "{stdout}");
    let with_secret = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_storywatch"))
            .args(["--config", "storywatch.toml"])
            .args(args)
            .current_dir(dir.path())
            .env("SW_E2E_HOOK_SECRET", "s")
            .output()
            .unwrap()
    };
    let stdout = success(&with_secret(&["check"]));
    assert!(
        stdout.contains("webhook slack → http://127.0.0.1:9/…, signed"),
        "{stdout}"
    );
    // A failed delivery's log line, `digest list` and `status` name the host only.
    seed(dir.path(), &hostile_items());
    let failed = with_secret(&["digest", "--now"]);
    assert!(!failed.status.success());
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(stderr.contains("http://127.0.0.1:9/…"), "{stderr}");
    let list = success(&with_secret(&["digest", "list", "--json"]));
    assert!(list.contains("127.0.0.1:9/…"), "{list}");
    let status = success(&with_secret(&["status"]));
    for text in [&*stdout, &*stderr, &*list, &*status] {
        assert!(
            !text.contains("s3cretpath") && !text.contains("t0ken"),
            "{text}"
        );
    }
}

#[test]
fn resend_is_a_new_message_for_that_one_delivery_only() {
    let server = TestServer::start();
    server.route("/hook", Response::status(200));
    server.route("/down", Response::status(500));
    let dir = tempfile::tempdir().unwrap();
    let notify = format!(
        "{}{}",
        webhook_notify("hook", &server.url("/hook"), "json", ""),
        webhook_notify("down", &server.url("/down"), "json", "")
    );
    write_config(dir.path(), &[], &notify);
    set_digest(
        dir.path(),
        "at = \"07:00\"\ntimezone = \"UTC\"\nretry = \"1s\"",
    );
    seed(dir.path(), &hostile_items());
    assert!(!run(dir.path(), &["digest", "--now"]).status.success());
    assert_eq!(server.requests_for("/down").len(), 1);
    std::thread::sleep(Duration::from_millis(1100)); // "down" is due for its retry now

    let resent = success(&run(
        dir.path(),
        &["digest", "resend", "1", "--channel", "hook"],
    ));
    assert!(resent.contains("delivered to hook"), "{resent}");
    let hook = server.requests_for("/hook");
    assert_eq!(hook.len(), 2);
    let keys: Vec<&str> = hook
        .iter()
        .map(|r| r.header("idempotency-key").unwrap())
        .collect();
    // A receiver that drops repeated keys must not drop the copy the user asked for.
    assert_eq!(keys[1], format!("{}-r1", keys[0]), "{keys:?}");
    // Only that delivery was queued and made: the other channel's pending retry was not
    // touched, nor the file channel's delivered one.
    assert_eq!(server.requests_for("/down").len(), 1);
    let db = Db::open(dir.path());
    assert_eq!(
        db.count("SELECT attempts FROM deliveries WHERE channel = 'down'"),
        1
    );
    assert_eq!(
        db.count("SELECT attempts FROM deliveries WHERE channel = 'file'"),
        1
    );
    assert_eq!(digest_files(dir.path()).len(), 1);
}

#[test]
fn a_starting_daemon_leaves_a_delivery_another_process_is_making() {
    let server = TestServer::start();
    server.route("/hook", Response::status(599).behave(Behaviour::Hang));
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &[],
        &webhook_notify("a-hook", &server.url("/hook"), "json", "")
            .replace("timeout = \"5s\"", "timeout = \"8s\""),
    );
    // The retry waits 5 s, so the daemon's own (legitimate) retry comes well after the check.
    set_digest(
        dir.path(),
        "every = \"1h\"\ntimezone = \"UTC\"\nretry = \"5s\"",
    );
    seed(dir.path(), &hostile_items());
    // `digest --now` claims the webhook delivery and hangs in it for up to 8 s.
    let manual = crate::support::binary(dir.path())
        .args(["--config", "storywatch.toml", "digest", "--now"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(eventually(Duration::from_secs(10), || server
        .requests_for("/hook")
        .len()
        == 1));
    // A daemon started meanwhile resumes pending deliveries at once — but not that one.
    let mut daemon = Daemon::start(dir.path());
    assert!(
        eventually(Duration::from_secs(8), || daemon
            .log()
            .contains("storywatch running")),
        "{}",
        daemon.log()
    );
    let manual = manual.wait_with_output().unwrap();
    assert!(!manual.status.success(), "the hung delivery failed");
    assert_eq!(
        server.requests_for("/hook").len(),
        1,
        "the daemon sent a delivery another process was making: {}",
        daemon.log()
    );
    // Once that process gave it up, the daemon retries it, once.
    server.route("/hook", Response::status(200));
    assert!(
        eventually(Duration::from_secs(20), || Db::open(dir.path()).count(
            "SELECT COUNT(*) FROM deliveries WHERE channel = 'a-hook' AND state = 'delivered'"
        ) == 1),
        "{}",
        daemon.log()
    );
    daemon.signal("TERM");
    daemon
        .wait_exit(Duration::from_secs(10))
        .expect("stops on TERM");
    let keys: BTreeSet<String> = server
        .requests_for("/hook")
        .iter()
        .map(|r| r.header("idempotency-key").unwrap().to_string())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
}

#[test]
fn empty_days_send_a_short_note_or_nothing_without_losing_the_slot() {
    // "send": a short note through the file channel.
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[], "");
    success(&run(dir.path(), &["digest", "--now"]));
    let files = digest_files(dir.path());
    assert_eq!(files.len(), 1);
    assert!(
        files[0].contains("No new developments")
            && files[0].contains("Nothing new on this story since the last digest."),
        "{}",
        files[0]
    );

    // "skip": nothing stored or delivered on an empty day...
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &[], "");
    // The daily slot was an hour ago.
    let slot = slot_an_hour_ago();
    set_digest(
        dir.path(),
        &format!("at = \"{slot}\"\ntimezone = \"UTC\"\nempty = \"skip\""),
    );
    seed(dir.path(), &hostile_items()[..1]);
    success(&run(dir.path(), &["digest", "--now"]));
    // (that digest was three days ago: two slots missed since)
    Db::open(dir.path()).pretend_down_for_three_days();
    let status = success(&run(dir.path(), &["status"]));
    assert!(status.contains("overdue"), "{status}");
    let skipped = run(dir.path(), &["digest", "--now"]);
    assert!(skipped.status.success());
    assert!(
        String::from_utf8_lossy(&skipped.stderr).contains("nothing to send"),
        "{}",
        String::from_utf8_lossy(&skipped.stderr)
    );
    assert_eq!(digest_files(dir.path()).len(), 1);
    assert_eq!(
        Db::open(dir.path()).count("SELECT COUNT(*) FROM digests"),
        1
    );
    // ...yet the skipped day counts as served: a match arriving after it waits for the next
    // slot instead of going out as a "missed" digest when the daemon starts.
    let status = success(&run(dir.path(), &["status"]));
    assert!(!status.contains("overdue"), "{status}");
    let tomorrow = Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(23))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%d")
        .to_string();
    assert!(
        status.contains(&format!("next digest: {tomorrow} {slot}")),
        "{status}"
    );
}

#[test]
fn the_footer_names_feeds_that_failed_since_the_last_digest() {
    let (server, urls) = feeds();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &urls, "");
    success(&run(dir.path(), &["poll", "--once"]));
    success(&run(dir.path(), &["digest", "--now"]));
    let clean = success(&run(dir.path(), &["digest", "show", "1"]));
    assert!(
        clean.contains("Feed health: every feed answered"),
        "{clean}"
    );

    // The wire fails once, then answers again before the next digest.
    server.route("/wire.rss", Response::status(500));
    let _ = run(dir.path(), &["poll", "--once"]);
    server.route("/wire.rss", crate::support::wire_feed());
    success(&run(dir.path(), &["poll", "--once"]));
    // A second on, so the failure is not in the digest's own last second (which would name it
    // in the next digest too).
    std::thread::sleep(Duration::from_millis(1100));
    success(&run(dir.path(), &["digest", "--now"]));
    let second = success(&run(dir.path(), &["digest", "show", "2"]));
    assert!(
        second.contains(
            "Feed health: 1 failed since the last digest, answering again — Example Wire — World (last failed "
        ),
        "{second}"
    );
    // The digest after that covers a period without failures.
    success(&run(dir.path(), &["digest", "--now"]));
    let third = success(&run(dir.path(), &["digest", "show", "3"]));
    assert!(
        third.contains("Feed health: every feed answered"),
        "{third}"
    );
}

// ---------------------------------------------------------------------------------------------
// Crash tests with the real daemon.

/// A feed server with the three fixture feeds (real polling, real matcher).
fn feeds() -> (TestServer, Vec<String>) {
    let server = TestServer::start();
    let read = |name| std::fs::read(fixture(name)).unwrap();
    server.route(
        "/wire.rss",
        Response::ok("application/rss+xml", read("wire.rss")),
    );
    server.route(
        "/desk.atom",
        Response::ok("application/atom+xml", read("desk.atom")),
    );
    server.route(
        "/gov.json",
        Response::ok("application/feed+json", read("gov.json")),
    );
    let urls = vec![
        server.url("/wire.rss"),
        server.url("/desk.atom"),
        server.url("/gov.json"),
    ];
    (server, urls)
}

struct Db(rusqlite::Connection);

impl Db {
    fn open(dir: &Path) -> Db {
        let conn = rusqlite::Connection::open(dir.join("storywatch.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        Db(conn)
    }
    fn count(&self, sql: &str) -> i64 {
        self.0.query_row(sql, [], |row| row.get(0)).unwrap_or(0)
    }
    /// Moves the stored digests and the schedule's last run three days back, as if the daemon
    /// had been down since.
    fn pretend_down_for_three_days(&self) {
        self.0
            .execute_batch(
                "UPDATE digests SET created_at = created_at - 259200, period_end = period_end - 259200;
                 UPDATE digest_schedule SET last_run = last_run - 259200;",
            )
            .unwrap();
    }
}

/// `HH:MM` (UTC) an hour ago: a daily slot that has just passed, the next one tomorrow.
fn slot_an_hour_ago() -> String {
    Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .strftime("%H:%M")
        .to_string()
}

/// Every digest reached every channel exactly once, and every match is in exactly one digest.
fn assert_exactly_once(dir: &Path, hook: &TestServer) {
    let db = Db::open(dir);
    let digests = db.count("SELECT COUNT(*) FROM digests");
    assert!(digests >= 1);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM deliveries WHERE state != 'delivered'"),
        0,
        "undelivered deliveries remain"
    );
    assert_eq!(
        db.count("SELECT COUNT(*) FROM matches WHERE digest_id IS NULL"),
        0,
        "a match was left out of every digest"
    );
    assert_eq!(
        db.count("SELECT COALESCE(SUM(match_count), 0) FROM digests"),
        db.count("SELECT COUNT(*) FROM matches"),
        "digests claim more or fewer matches than exist"
    );
    // The file channel: one file per digest.
    let files = digest_files(dir);
    assert_eq!(files.len() as i64, digests, "one file per digest");
    // Each matched title appears in exactly one file.
    let titles: Vec<String> = {
        let mut stmt =
            db.0.prepare("SELECT i.title FROM matches m JOIN items i ON i.id = m.item_id")
                .unwrap();
        stmt.query_map([], |row| row.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    // Each matched title appears in at most one file (a syndicated copy is folded into
    // another entry's "also reported by", so it may appear in none).
    for title in &titles {
        let escaped = storywatch::digest::render::escape(title);
        let needle: String = escaped.chars().take(30).collect();
        let carrying = files.iter().filter(|f| f.contains(&needle)).count();
        assert!(carrying <= 1, "{title:?} is in {carrying} digests");
    }
    // The webhook: every digest acknowledged once per idempotency key.
    let mut ok: BTreeMap<String, usize> = BTreeMap::new();
    for request in hook.requests_for("/hook") {
        if request.status == 200 {
            *ok.entry(request.header("idempotency-key").unwrap().to_string())
                .or_default() += 1;
        }
    }
    let keys: BTreeSet<&String> = ok.keys().collect();
    assert_eq!(keys.len() as i64, digests, "{ok:?}");
    assert!(ok.values().all(|n| *n == 1), "{ok:?}");
}

#[test]
fn kill_9_during_a_hanging_delivery_then_restart_delivers_every_digest_once() {
    let (server, urls) = feeds();
    // The webhook sorts before the file channel, so it is delivered first and hangs there:
    // the digest is stored, its file delivery not yet made.
    // (Recorded as 599: the server never answers it.)
    server.route("/hook", Response::status(599).behave(Behaviour::Hang));
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &urls,
        &webhook_notify("a-hook", &server.url("/hook"), "json", ""),
    );
    set_digest(
        dir.path(),
        "every = \"2s\"\ntimezone = \"UTC\"\nretry = \"1s\"",
    );

    let mut daemon = Daemon::start(dir.path());
    assert!(
        eventually(Duration::from_secs(15), || !server
            .requests_for("/hook")
            .is_empty()),
        "{}",
        daemon.log()
    );
    {
        let db = Db::open(dir.path());
        assert_eq!(db.count("SELECT COUNT(*) FROM digests"), 1);
        assert!(db.count("SELECT COUNT(*) FROM matches WHERE digest_id = 1") >= 3);
        assert_eq!(
            db.count("SELECT COUNT(*) FROM deliveries WHERE state = 'pending'"),
            2,
            "both deliveries pending while the webhook hangs"
        );
    }
    daemon.signal("KILL");
    daemon.wait_exit(Duration::from_secs(5)).unwrap();
    assert!(
        digest_files(dir.path()).is_empty(),
        "nothing delivered before the kill"
    );

    server.route("/hook", Response::status(200));
    let mut daemon = Daemon::start(dir.path());
    // The pending digest goes out on start; more (empty) digests follow every 2 s.
    assert!(
        eventually(Duration::from_secs(10), || Db::open(dir.path())
            .count("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'")
            >= 4),
        "{}",
        daemon.log()
    );
    daemon.signal("TERM");
    daemon
        .wait_exit(Duration::from_secs(10))
        .expect("daemon stops on TERM");
    // TERM may land mid-delivery of the latest digest (it then stays pending): one manual run
    // delivers whatever is pending, as the next start would.
    success(&run(dir.path(), &["digest", "--now"]));
    assert_exactly_once(dir.path(), &server);
    // The hung attempt and the delivered one were the same digest under the same key.
    let first_key = server.requests_for("/hook")[0]
        .header("idempotency-key")
        .unwrap()
        .to_string();
    assert!(first_key.starts_with("storywatch-1-"), "{first_key}");
}

#[test]
fn kill_9_at_random_moments_never_loses_or_repeats_a_match() {
    let (server, urls) = feeds();
    server.route("/hook", Response::status(200));
    let dir = tempfile::tempdir().unwrap();
    write_config(
        dir.path(),
        &urls,
        &webhook_notify("hook", &server.url("/hook"), "json", ""),
    );
    set_digest(
        dir.path(),
        "every = \"1s\"\ntimezone = \"UTC\"\nretry = \"1s\"",
    );
    // Kill after a spread of delays: during start-up, the poll, digest building and delivery.
    for delay_ms in [150u64, 400, 700, 1100, 1600, 2300] {
        let mut daemon = Daemon::start(dir.path());
        std::thread::sleep(Duration::from_millis(delay_ms));
        daemon.signal("KILL");
        daemon.wait_exit(Duration::from_secs(5)).unwrap();
    }
    // A last clean run finishes whatever the kills left pending.
    let mut daemon = Daemon::start(dir.path());
    assert!(
        eventually(Duration::from_secs(10), || {
            let db = Db::open(dir.path());
            db.count("SELECT COUNT(*) FROM digests") >= 1
                && db.count("SELECT COUNT(*) FROM deliveries WHERE state != 'delivered'") == 0
                && db.count("SELECT COUNT(*) FROM matches WHERE digest_id IS NULL") == 0
        }),
        "{}",
        daemon.log()
    );
    daemon.signal("TERM");
    daemon
        .wait_exit(Duration::from_secs(10))
        .expect("daemon stops on TERM");
    // TERM may land mid-delivery of the latest digest (it then stays pending): one manual run
    // delivers whatever is pending, as the next start would.
    success(&run(dir.path(), &["digest", "--now"]));
    assert_exactly_once(dir.path(), &server);
}

#[test]
fn kill_9_mid_smtp_delivery_then_restart_mails_each_digest_under_one_message_id() {
    // Killed with the whole message at the server, before its 250; and after the 250, while
    // the daemon waits for the reply to QUIT — so it has not recorded the delivery either way.
    for stall in [Stall::BeforeDataReply, Stall::BeforeQuitReply] {
        let smtp = SmtpServer::start(SmtpMode::Plain);
        smtp.stall_once(stall);
        let (server, urls) = feeds();
        server.route("/hook", Response::status(200));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("smtp.pass"), "pw").unwrap();
        let notify = format!(
            "{}{}",
            smtp_notify(&smtp, "none", ""),
            webhook_notify("hook", &server.url("/hook"), "json", "")
        );
        write_config(dir.path(), &urls, &notify);
        set_digest(
            dir.path(),
            "every = \"2s\"\ntimezone = \"UTC\"\nretry = \"1s\"",
        );

        // Channels are delivered in name order: file, hook, then mail, which hangs.
        let mut daemon = Daemon::start(dir.path());
        assert!(
            eventually(Duration::from_secs(15), || smtp.stalled()),
            "{stall:?}: {}",
            daemon.log()
        );
        daemon.signal("KILL");
        daemon.wait_exit(Duration::from_secs(5)).unwrap();
        {
            let db = Db::open(dir.path());
            assert_eq!(db.count("SELECT COUNT(*) FROM digests"), 1, "{stall:?}");
            assert_eq!(
                db.count(
                    "SELECT COUNT(*) FROM deliveries WHERE channel = 'mail' AND state = 'pending'"
                ),
                1,
                "{stall:?}: the mail was not recorded as delivered"
            );
        }
        assert_eq!(
            smtp.mails().len(),
            1,
            "{stall:?}: the server has the message"
        );

        let mut daemon = Daemon::start(dir.path());
        assert!(
            eventually(Duration::from_secs(15), || {
                let db = Db::open(dir.path());
                db.count("SELECT COUNT(*) FROM deliveries WHERE channel = 'mail' AND state = 'delivered'")
                    >= 2
            }),
            "{stall:?}: {}",
            daemon.log()
        );
        daemon.signal("TERM");
        daemon
            .wait_exit(Duration::from_secs(15))
            .expect("daemon stops on TERM");
        // TERM may land mid-delivery of the latest digest: finish what is pending.
        success(&run(dir.path(), &["digest", "--now"]));
        // The file and the webhook: exactly once each; every match in exactly one digest.
        assert_exactly_once(dir.path(), &server);
        // E-mail is at least once: the message the kill interrupted is sent again on restart,
        // under the same Message-ID (mail clients show one message); every other digest once.
        let digests = Db::open(dir.path()).count("SELECT COUNT(*) FROM digests");
        let mut ids: BTreeMap<String, usize> = BTreeMap::new();
        for mail in smtp.mails() {
            *ids.entry(decode_header(&mail.data, "Message-ID"))
                .or_default() += 1;
        }
        assert_eq!(ids.len() as i64, digests, "{stall:?}: {ids:?}");
        let first = ids
            .iter()
            .find(|(id, _)| id.starts_with("<storywatch-1-"))
            .map(|(_, n)| *n);
        assert_eq!(first, Some(2), "{stall:?}: {ids:?}");
        assert!(
            ids.iter()
                .filter(|(id, _)| !id.starts_with("<storywatch-1-"))
                .all(|(_, n)| *n == 1),
            "{stall:?}: {ids:?}"
        );
    }
}

#[test]
fn a_digest_missed_while_down_is_sent_once_on_restart() {
    let (server, urls) = feeds();
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), &urls, "");
    // The daily slot was an hour ago, so the next regular one is tomorrow.
    let slot = slot_an_hour_ago();
    set_digest(dir.path(), &format!("at = \"{slot}\"\ntimezone = \"UTC\""));
    success(&run(dir.path(), &["digest", "--now"]));
    // Pretend the last digest was three days ago: two daily slots were missed.
    Db::open(dir.path()).pretend_down_for_three_days();

    let mut daemon = Daemon::start(dir.path());
    assert!(
        eventually(Duration::from_secs(10), || Db::open(dir.path())
            .count("SELECT COUNT(*) FROM digests")
            == 2),
        "{}",
        daemon.log()
    );
    // Give it time to (wrongly) send more.
    std::thread::sleep(Duration::from_secs(3));
    daemon.signal("TERM");
    daemon
        .wait_exit(Duration::from_secs(10))
        .expect("daemon stops on TERM");
    let db = Db::open(dir.path());
    assert_eq!(
        db.count("SELECT COUNT(*) FROM digests"),
        2,
        "{}",
        daemon.log()
    );
    assert_eq!(digest_files(dir.path()).len(), 2);
    assert_eq!(
        db.count("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'"),
        2
    );
    drop(server);
}
