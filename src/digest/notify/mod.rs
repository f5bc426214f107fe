//! Delivering a stored digest to one channel.
//!
//! A delivery must be safe to repeat: after a crash between sending and recording, the daemon
//! sends again, so each channel makes a repeat harmless where it can — the file channel rewrites
//! the same file, webhooks carry an `Idempotency-Key` and e-mails a fixed `Message-ID` that are
//! the same on every attempt for one digest and channel.

mod file;
mod smtp;
mod webhook;

use jiff::tz::TimeZone;

use crate::config::{Channel, NotifyConfig, SecretError};
use crate::store::DigestRow;

use super::model::Digest;

/// Why a delivery failed; the delivery stays pending and is retried.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Writing the digest file failed.
    #[error(
        "cannot write digest to {path}: {source}; check the [[notify]] path is a writable folder"
    )]
    File {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Writing to standard output failed.
    #[error("cannot write digest to standard output: {0}")]
    Stdout(std::io::Error),
    /// A password or webhook secret could not be read.
    #[error("{0}")]
    Secret(#[from] SecretError),
    /// The e-mail could not be built (bad address, bad certificate file).
    #[error("cannot prepare the e-mail: {0}")]
    Mail(String),
    /// The SMTP server refused or could not be reached.
    #[error(
        "SMTP delivery to {server} failed: {message}; check host, port, tls and the credentials"
    )]
    Smtp {
        /// `host:port`.
        server: String,
        /// What went wrong.
        message: String,
    },
    /// The webhook could not be reached or answered with a non-2xx status.
    #[error("webhook POST to {url} failed: {message}")]
    Webhook {
        /// The URL's scheme, host and port ([`crate::config::redacted_url`]): the rest may
        /// carry a token.
        url: String,
        /// What went wrong.
        message: String,
    },
}

/// A stored digest with its structured model, as the channels need it.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The stored row (id, times, Markdown).
    pub row: &'a DigestRow,
    /// The structured digest; `None` for digests stored before models were kept.
    pub model: Option<Digest>,
    /// How many times this delivery was resent ([`crate::store::PendingDelivery::generation`]).
    pub generation: u32,
}

impl<'a> Outgoing<'a> {
    /// Reads the model stored with `row` (an unreadable model degrades to Markdown only), for
    /// the delivery's `generation`.
    pub fn new(row: &'a DigestRow, generation: u32) -> Outgoing<'a> {
        let model = row
            .model
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok());
        Outgoing {
            row,
            model,
            generation,
        }
    }

    /// The subject / title line.
    pub fn subject(&self) -> String {
        match &self.model {
            Some(model) => model.subject(),
            None => format!("storywatch digest {}", self.row.id),
        }
    }

    /// The key that is the same for every attempt to deliver this digest to `channel` (also
    /// the e-mail's Message-ID). The creation time is part of it so a new database's digest 1
    /// is not taken for an old one; a resend (`-r1`, `-r2`, …) gets a key of its own, since the
    /// user asked for the message again and a receiver dropping repeated keys would drop it.
    pub fn idempotency_key(&self, channel: &str) -> String {
        let channel: String = channel
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let resend = match self.generation {
            0 => String::new(),
            n => format!("-r{n}"),
        };
        format!(
            "storywatch-{}-{}-{channel}{resend}",
            self.row.id,
            self.row.created_at.as_second()
        )
    }
}

/// Delivers `digest` to the channel `notify` as the delivery's `generation` (0, or the number
/// of resends); `zone` names files by the local date.
pub async fn deliver(
    notify: &NotifyConfig,
    digest: &DigestRow,
    generation: u32,
    zone: &TimeZone,
) -> Result<(), NotifyError> {
    match &notify.channel {
        Channel::File { folder } => file::deliver(folder, digest, zone).map(|_| ()),
        Channel::Stdout => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(digest.markdown.as_bytes())
                .and_then(|_| stdout.flush())
                .map_err(NotifyError::Stdout)
        }
        Channel::Smtp(config) => {
            smtp::deliver(config, &notify.name, &Outgoing::new(digest, generation)).await
        }
        Channel::Webhook(config) => {
            webhook::deliver(config, &notify.name, &Outgoing::new(digest, generation)).await
        }
    }
}

/// Whether process `pid` still runs, to tell a live delivery claim from one a killed process
/// left ([`crate::store::Store::release_orphaned_claims`]). Asked of the kernel with signal 0,
/// not read from `/proc`: the shipped units' `ProtectProc=invisible` hides other users'
/// processes there, and a `sudo storywatch digest resend` beside the service must not look
/// dead. A process that ended but was not yet reaped (a zombie) counts as ended.
pub fn process_running(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 sends nothing; it only checks that `pid` exists and may
    // be signalled. No memory is shared with the call.
    let exists = unsafe { libc::kill(pid, 0) } == 0
        || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    if !exists {
        return false;
    }
    // The state follows the parenthesised command name in /proc/PID/stat (when visible).
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with(['Z', 'X']))
    })
}

/// One line saying where a channel delivers, for `storywatch check` (no secrets in it).
pub fn describe(notify: &NotifyConfig) -> String {
    match &notify.channel {
        Channel::File { folder } => format!("file → {}", folder.display()),
        Channel::Stdout => "stdout".to_string(),
        Channel::Smtp(c) => format!(
            "smtp {}:{} ({:?}) from {} → {}",
            c.host,
            c.port,
            c.tls,
            c.from,
            c.to.join(", ")
        )
        .replace("(None)", "(plain)")
        .replace("(Starttls)", "(STARTTLS)")
        .replace("(Tls)", "(TLS)"),
        Channel::Webhook(c) => format!(
            "webhook {} → {}{}",
            format!("{:?}", c.format).to_lowercase(),
            crate::config::redacted_url(&c.url),
            if c.secret.is_some() { ", signed" } else { "" }
        ),
    }
}

/// Reads the channel's password or secret now, so `storywatch check` can report a missing file
/// or variable before the first digest is due.
pub fn check_secret(notify: &NotifyConfig) -> Result<(), NotifyError> {
    let source = match &notify.channel {
        Channel::Smtp(c) => c.password.as_ref(),
        Channel::Webhook(c) => c.secret.as_ref(),
        _ => None,
    };
    if let Some(source) = source {
        source.read()?;
    }
    Ok(())
}

pub use smtp::build_message;
pub use webhook::{body_for, sign};

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stored digest without a model, built 2026-01-01 07:00 UTC.
    pub(crate) fn row(id: i64, markdown: &str) -> DigestRow {
        DigestRow {
            id,
            created_at: "2026-01-01T07:00:00Z".parse().unwrap(),
            period_start: None,
            period_end: "2026-01-01T07:00:00Z".parse().unwrap(),
            match_count: 0,
            markdown: markdown.into(),
            model: None,
        }
    }

    #[test]
    fn resends_get_their_own_key() {
        let row = row(7, "");
        assert_eq!(
            Outgoing::new(&row, 0).idempotency_key("team chat"),
            "storywatch-7-1767250800-team_chat"
        );
        assert_eq!(
            Outgoing::new(&row, 2).idempotency_key("team chat"),
            "storywatch-7-1767250800-team_chat-r2"
        );
    }

    #[test]
    fn this_process_runs_and_an_ended_child_does_not() {
        assert!(process_running(std::process::id()));
        // PID 1 belongs to another user here, or is this container's init: running either way.
        assert!(process_running(1));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Ended, not yet reaped: a zombie.
        while std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z"))
        {
            std::thread::yield_now();
        }
        assert!(!process_running(pid), "a zombie has ended");
        child.wait().unwrap();
        assert!(!process_running(pid), "a reaped child is gone");
    }
}
