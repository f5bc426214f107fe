//! Delivering a stored digest to one channel.
//!
//! A delivery must be safe to repeat: after a crash between sending and recording, the daemon
//! sends again, so each channel makes a repeat harmless where it can (the file channel rewrites
//! the same file).

mod file;

use crate::config::Channel;
use crate::store::DigestRow;
use jiff::tz::TimeZone;

/// Why a delivery failed; the delivery stays pending and is retried.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Writing the digest file failed.
    #[error(
        "cannot write digest to {path}: {source}; check the [[notify]] path is a writable folder"
    )]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// Writing to standard output failed.
    #[error("cannot write digest to standard output: {0}")]
    Stdout(std::io::Error),
}

/// Delivers `digest` to `channel`; `zone` names files by the local date.
pub async fn deliver(
    channel: &Channel,
    digest: &DigestRow,
    zone: &TimeZone,
) -> Result<(), NotifyError> {
    match channel {
        Channel::File { folder } => file::deliver(folder, digest, zone).map(|_| ()),
        Channel::Stdout => {
            use std::io::Write;
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(digest.markdown.as_bytes())
                .and_then(|_| stdout.flush())
                .map_err(NotifyError::Stdout)
        }
    }
}
