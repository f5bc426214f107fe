//! Talking to the service manager: systemd's notify protocol (READY, STATUS, WATCHDOG,
//! RELOADING, STOPPING) and the instance lock that keeps two daemons off one database.
//!
//! The notify protocol is one datagram per message to the socket named in `$NOTIFY_SOCKET`
//! (`sd_notify(3)`); writing it here keeps it visible and testable with a real socket. Outside
//! systemd every call is a no-op.

use std::fs::{File, OpenOptions};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::debug;

/// Sends notifications to systemd, when run under it.
#[derive(Debug)]
pub struct Notifier {
    target: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
    watchdog: Option<Duration>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID`.
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let address = socket_address(Path::new(&path))?;
            let socket = UnixDatagram::unbound().ok()?;
            Some((socket, address))
        });
        let for_us = std::env::var("WATCHDOG_PID")
            .ok()
            .and_then(|pid| pid.parse::<u32>().ok())
            .is_none_or(|pid| pid == std::process::id());
        let watchdog = std::env::var("WATCHDOG_USEC")
            .ok()
            .and_then(|usec| usec.parse::<u64>().ok())
            .filter(|usec| *usec > 0 && for_us)
            .map(Duration::from_micros);
        Notifier { target, watchdog }
    }

    /// How often the watchdog must be fed: half of systemd's `WatchdogSec`, if it is set.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|limit| limit / 2)
    }

    fn send(&self, message: &str) {
        if let Some((socket, address)) = &self.target
            && let Err(err) = socket.send_to_addr(message.as_bytes(), address)
        {
            debug!(error = %err, "sd_notify failed");
        }
    }

    /// Start-up is complete.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// A one-line status shown by `systemctl status`.
    pub fn status(&self, status: &str) {
        self.send(&format!("STATUS={}", one_line(status)));
    }

    /// The main loop is alive.
    pub fn watchdog(&self) {
        if self.watchdog.is_some() {
            self.send("WATCHDOG=1");
        }
    }

    /// Configuration is being reloaded; call [`Notifier::ready`] when done.
    pub fn reloading(&self) {
        self.send("RELOADING=1");
    }

    /// Shutdown has begun.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn socket_address(path: &Path) -> Option<std::os::unix::net::SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        #[cfg(target_os = "linux")]
        {
            use std::os::linux::net::SocketAddrExt;
            return std::os::unix::net::SocketAddr::from_abstract_name(name).ok();
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = name;
            return None;
        }
    }
    std::os::unix::net::SocketAddr::from_pathname(path).ok()
}

/// Why the instance lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "another storywatch is already running on {database} (lock {lock} is held); stop it first \
         (systemctl stop storywatch) or give this one a different [storage] database"
    )]
    Held {
        /// The database the other process uses.
        database: PathBuf,
        /// Its lock file.
        lock: PathBuf,
    },
    /// The lock file could not be opened.
    #[error("cannot open lock file {lock}: {cause}; check that the database folder is writable")]
    Open {
        /// The lock file.
        lock: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
}

/// An exclusive lock on `<database>.lock`, held for the daemon's lifetime. The operating system
/// releases it when the process ends, however it ends, so a crash never leaves a stale lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

/// The lock file beside `database`.
fn lock_path(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl InstanceLock {
    /// Whether a daemon holds the lock for `database` now. Only looks: creates no lock file
    /// and takes a shared lock for an instant, so `storywatch status` writes nothing.
    pub fn is_held(database: &Path) -> bool {
        let Ok(file) = File::open(lock_path(database)) else {
            return false;
        };
        matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        )
    }

    /// Takes the lock for `database`, or says who holds it.
    pub fn acquire(database: &Path) -> Result<InstanceLock, LockError> {
        let lock = lock_path(database);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|cause| LockError::Open {
                lock: lock.clone(),
                cause,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(InstanceLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Held {
                database: database.to_path_buf(),
                lock,
            }),
            Err(std::fs::TryLockError::Error(cause)) => Err(LockError::Open { lock, cause }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_on_the_same_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let first = InstanceLock::acquire(&db).unwrap();
        let err = InstanceLock::acquire(&db).unwrap_err().to_string();
        assert!(
            err.contains("already running") && err.contains("s.db"),
            "{err}"
        );
        assert!(InstanceLock::is_held(&db));
        drop(first);
        assert!(!InstanceLock::is_held(&db));
        InstanceLock::acquire(&db).unwrap();
    }

    #[test]
    fn looking_at_the_lock_creates_no_file() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!InstanceLock::is_held(&dir.path().join("s.db")));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn notifications_reach_a_real_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        let notifier = Notifier {
            target: Some((
                UnixDatagram::unbound().unwrap(),
                socket_address(&path).unwrap(),
            )),
            watchdog: Some(Duration::from_secs(10)),
        };
        notifier.ready("polled 3 feeds\nmore");
        notifier.watchdog();
        let mut buf = [0u8; 256];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=polled 3 feeds more");
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"WATCHDOG=1");
        assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(5)));
    }
}
