//! The configuration file: typed, with defaults, validated at load time.
//!
//! Every problem is reported as `FILE:LINE:COLUMN: what is wrong` followed by how to fix it, so a
//! bad config stops start-up with a message a person can act on. Relative paths resolve against
//! the config file's folder; the compiled-in default config resolves them against the working
//! directory.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Time;
use jiff::tz::TimeZone;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::duration::parse_duration;
use crate::story::Tuning;

use crate::bundled::CONFIG as BUNDLED_CONFIG;

/// Where a configuration came from; error messages and relative paths depend on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// A file on disk.
    File(PathBuf),
    /// The default compiled into the binary.
    Bundled,
}

impl std::fmt::Display for ConfigOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConfigOrigin::File(path) => write!(f, "{}", path.display()),
            ConfigOrigin::Bundled => f.write_str("<bundled config/storywatch.toml>"),
        }
    }
}

/// A configuration problem, located in the file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {cause}; pass an existing file with --config")]
    Read {
        /// The file asked for.
        path: PathBuf,
        /// What the operating system said.
        cause: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{origin}:{line}:{column}: {message}")]
    Invalid {
        /// The file (or the bundled default).
        origin: ConfigOrigin,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where it was read from.
    pub origin: ConfigOrigin,
    /// `[storage]`
    pub storage: StorageConfig,
    /// The first (often the only) story: `[story]`, or the first of `[[stories]]`.
    pub story: StoryConfig,
    /// The further stories of `[[stories]]`, in config order (empty with `[story]`); see
    /// [`Config::stories`] for all of them.
    pub other_stories: Vec<StoryConfig>,
    /// `[fetch]`
    pub fetch: FetchConfig,
    /// `[[feeds]]`
    pub feeds: Vec<FeedConfig>,
    /// `[digest]`
    pub digest: DigestConfig,
    /// `[[notify]]`
    pub notify: Vec<NotifyConfig>,
    /// `[web]`: the review page; `None` when the section is absent (no web server).
    pub web: Option<WebConfig>,
}

/// `[web]`: where the review page listens and who may use it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// Address and port to bind; loopback unless a token is set.
    pub listen: std::net::SocketAddr,
    /// The access token from `token` or `token_file`; required off loopback.
    pub token: Option<String>,
}

impl std::fmt::Debug for WebConfig {
    // The token is a secret: keep it out of logs and debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// `[storage]`: where the database lives.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The SQLite file, resolved.
    pub database: PathBuf,
}

/// `[story]` or one `[[stories]]` entry: a story being followed.
#[derive(Debug, Clone)]
pub struct StoryConfig {
    /// Display name.
    pub name: String,
    /// Where the baseline articles come from.
    pub seeds: SeedSource,
    /// Add/boost/exclude terms.
    pub tuning: Tuning,
}

/// Where a story's baseline articles come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedSource {
    /// A folder, resolved and checked to exist.
    Folder(PathBuf),
    /// The copy of `seeds/` compiled into the binary (the bundled config's story).
    Bundled,
}

/// `[fetch]`: how feeds are fetched.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// Limit for a whole fetch.
    pub timeout: Duration,
    /// Limit for connecting.
    pub connect_timeout: Duration,
    /// Largest accepted body.
    pub max_body_bytes: u64,
    /// Allow loopback and private addresses.
    pub allow_private_networks: bool,
    /// How many feeds are fetched at once.
    pub concurrency: usize,
    /// Overrides the `User-Agent` header.
    pub user_agent: Option<String>,
    /// How many fetches may go to one host at once (on top of `concurrency`).
    pub per_host: usize,
    /// The shortest wait between two polls of one feed, whatever its `interval` says.
    pub min_interval: Duration,
    /// The longest wait the adaptive schedule and server cache hints may impose.
    pub max_interval: Duration,
    /// Whether a feed's interval follows how often it actually publishes.
    pub adaptive: bool,
    /// On a feed's first poll, items published longer ago than this are stored as background
    /// (searchable, never a new match); `None` (`"off"`) treats every item as new.
    pub backlog_max_age: Option<Duration>,
}

/// One `[[feeds]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedConfig {
    /// Absolute http(s) URL.
    pub url: String,
    /// How often it is polled.
    pub interval: Duration,
    /// Optional display name; the feed's own title is used otherwise.
    pub title: Option<String>,
}

/// What to do when a digest period has no new developments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmptyDigest {
    /// Send a short "no new developments" digest.
    Send,
    /// Send nothing.
    Skip,
}

/// How re-reports and `related` items appear in the digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelatedMode {
    /// Listed in a compact section of their own.
    Show,
    /// Only counted.
    Count,
    /// Left out.
    Hide,
}

/// `[digest]`: when the daily digest goes out.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// Local time of day (ignored when `every` is set).
    pub at: Time,
    /// A fixed period instead of a daily time, e.g. `12h`.
    pub every: Option<Duration>,
    /// Wait before the first retry of a failed delivery; doubles per attempt.
    pub retry: Duration,
    /// Re-reports and related items: show, count or hide.
    pub related: RelatedMode,
    /// The IANA zone `at` is read in.
    pub timezone: TimeZone,
    /// The zone's name as written, for messages.
    pub timezone_name: String,
    /// Empty-day policy.
    pub empty: EmptyDigest,
}

/// One `[[notify]]` channel.
#[derive(Debug, Clone, PartialEq)]
pub struct NotifyConfig {
    /// A unique name, recorded with each delivery (defaults to the kind, numbered when repeated).
    pub name: String,
    /// What kind of channel and its settings.
    pub channel: Channel,
}

/// The channel kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    /// Markdown files, one per digest, in a folder.
    File {
        /// The folder, resolved (created when missing).
        folder: PathBuf,
    },
    /// Standard output.
    Stdout,
    /// E-mail over SMTP.
    Smtp(SmtpConfig),
    /// An HTTP POST.
    Webhook(WebhookConfig),
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (only sensible for a relay on localhost).
    None,
    /// Plain connection upgraded with STARTTLS (required, never skipped).
    Starttls,
    /// TLS from the first byte ("SMTPS", usually port 465).
    Tls,
}

/// Where a secret comes from. The value is read when it is needed, never stored in the config
/// and never printed: `Debug` shows only where it comes from.
#[derive(Clone, PartialEq)]
pub enum SecretSource {
    /// Written in the config itself.
    Inline(String),
    /// The first line of a file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
}

impl std::fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline(<redacted>)"),
            SecretSource::File(path) => write!(f, "File({})", path.display()),
            SecretSource::Env(name) => write!(f, "Env({name})"),
        }
    }
}

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The file could not be read.
    #[error("cannot read secret file {path}: {cause}; check the path and its permissions")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The variable is not set.
    #[error("environment variable {0} is not set; set it in the service's environment")]
    Env(String),
    /// The value is empty.
    #[error("the secret from {0} is empty; put the password or secret there")]
    Empty(String),
}

impl SecretSource {
    /// Reads the secret now (files and variables can change while the daemon runs).
    pub fn read(&self) -> Result<String, SecretError> {
        let (value, from) = match self {
            SecretSource::Inline(value) => (value.clone(), "the config".to_string()),
            SecretSource::File(path) => {
                let text = std::fs::read_to_string(path).map_err(|cause| SecretError::File {
                    path: path.clone(),
                    cause,
                })?;
                // The first line only, so a trailing newline from `echo` is not part of it.
                let line = text.lines().next().unwrap_or("").to_string();
                (line, path.display().to_string())
            }
            SecretSource::Env(name) => (
                std::env::var(name).map_err(|_| SecretError::Env(name.clone()))?,
                format!("${name}"),
            ),
        };
        if value.is_empty() {
            return Err(SecretError::Empty(from));
        }
        Ok(value)
    }
}

/// `[[notify]] kind = "smtp"`.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// Server host name.
    pub host: String,
    /// Server port (default by `tls`: 25, 587 or 465).
    pub port: u16,
    /// Connection security.
    pub tls: SmtpTls,
    /// The sender, `Name <addr>` or `addr`.
    pub from: String,
    /// One or more recipients.
    pub to: Vec<String>,
    /// Login user, when the server wants one.
    pub username: Option<String>,
    /// The password's source (needed with `username`).
    pub password: Option<SecretSource>,
    /// An extra root certificate (PEM) to trust, for a server with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Limit for one delivery.
    pub timeout: Duration,
}

/// The body shape a webhook receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// The digest as structured JSON.
    Json,
    /// Slack incoming webhook (`{"text": …}`).
    Slack,
    /// Discord webhook (`{"content": …}`, ≤ 2000 characters).
    Discord,
    /// ntfy: plain-text body, `Title` header.
    Ntfy,
}

/// `[[notify]] kind = "webhook"`.
#[derive(Clone, PartialEq)]
pub struct WebhookConfig {
    /// Where to POST. Often a secret itself (Slack and Discord put the token in the path), so
    /// it is only ever shown through [`redacted_url`].
    pub url: String,
    /// Body shape.
    pub format: WebhookFormat,
    /// HMAC-SHA256 key for the `X-Storywatch-Signature` header.
    pub secret: Option<SecretSource>,
    /// Limit for one delivery.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redacted_url(&self.url))
            .field("format", &self.format)
            .field("secret", &self.secret)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A webhook URL as logs, errors and `check` may show it: scheme, host and port, with the
/// path, query, fragment and any user or password replaced by `…`. Incoming-webhook services
/// (Slack `/services/T…/B…/token`, Discord `/api/webhooks/id/token`) carry the secret in the
/// path, so no part after the host is safe to print.
pub fn redacted_url(url: &str) -> String {
    let url = url.trim();
    if let Ok(parsed) = url::Url::parse(url)
        && let Some(host) = parsed.host_str()
    {
        let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
        let hidden = parsed.path() != "/"
            || parsed.query().is_some()
            || parsed.fragment().is_some()
            || !parsed.username().is_empty();
        return format!(
            "{}://{host}{port}/{}",
            parsed.scheme(),
            if hidden { "…" } else { "" }
        );
    }
    // Not a URL: keep what would be the scheme and host, drop everything after them.
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let host_start = url[start..end].rfind('@').map_or(start, |i| start + i + 1);
    let mut shown = format!("{}{}", &url[..start], &url[host_start..end]);
    if end < url.len() || host_start > start {
        shown.push('…');
    }
    shown
}

// ---------------------------------------------------------------------------------------------
// The file as written. Durations, times and zones are checked while deserialising so the TOML
// parser attaches the offending value's position to the error.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    storage: RawStorage,
    story: Option<RawStory>,
    #[serde(default)]
    stories: Vec<Spanned<RawStory>>,
    #[serde(default)]
    fetch: RawFetch,
    #[serde(default)]
    feeds: Vec<Spanned<RawFeed>>,
    digest: Option<RawDigest>,
    #[serde(default)]
    notify: Vec<Spanned<RawNotify>>,
    web: Option<Spanned<RawWeb>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    listen: Option<Spanned<String>>,
    token: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
}

/// The review page's default address: loopback only.
pub const DEFAULT_WEB_LISTEN: &str = "127.0.0.1:8470";

/// Shortest accepted access token, so it cannot be guessed by trying.
const MIN_TOKEN_LEN: usize = 16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    #[serde(default = "default_database")]
    database: String,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            database: default_database(),
        }
    }
}

fn default_database() -> String {
    "storywatch.db".to_string()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStory {
    name: Spanned<String>,
    seeds: Spanned<String>,
    #[serde(flatten)]
    tuning: Tuning,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    #[serde(default = "default_timeout")]
    timeout: Spanned<HumanDuration>,
    #[serde(default = "default_connect_timeout")]
    connect_timeout: HumanDuration,
    #[serde(default = "default_max_body")]
    max_body_size: ByteSize,
    #[serde(default)]
    allow_private_networks: bool,
    #[serde(default = "default_concurrency")]
    concurrency: Spanned<usize>,
    user_agent: Option<String>,
    #[serde(default = "default_per_host")]
    per_host: Spanned<usize>,
    #[serde(default = "default_min_interval")]
    min_interval: Spanned<HumanDuration>,
    #[serde(default = "default_max_interval")]
    max_interval: Spanned<HumanDuration>,
    #[serde(default = "default_adaptive")]
    adaptive: bool,
    #[serde(default = "default_backlog")]
    backlog_max_age: MaybeDuration,
}

impl Default for RawFetch {
    fn default() -> Self {
        RawFetch {
            timeout: default_timeout(),
            connect_timeout: default_connect_timeout(),
            max_body_size: default_max_body(),
            allow_private_networks: false,
            concurrency: default_concurrency(),
            user_agent: None,
            per_host: default_per_host(),
            min_interval: default_min_interval(),
            max_interval: default_max_interval(),
            adaptive: default_adaptive(),
            backlog_max_age: default_backlog(),
        }
    }
}

fn default_per_host() -> Spanned<usize> {
    Spanned::new(0..0, 2)
}
fn default_min_interval() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(Duration::from_secs(5 * 60)))
}
fn default_max_interval() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(Duration::from_secs(24 * 3600)))
}
fn default_adaptive() -> bool {
    true
}
fn default_backlog() -> MaybeDuration {
    MaybeDuration(Some(Duration::from_secs(7 * 86_400)))
}

fn default_timeout() -> Spanned<HumanDuration> {
    Spanned::new(0..0, HumanDuration(Duration::from_secs(20)))
}
fn default_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_max_body() -> ByteSize {
    ByteSize(5 * 1024 * 1024)
}
fn default_concurrency() -> Spanned<usize> {
    Spanned::new(0..0, 8)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeed {
    url: Spanned<String>,
    #[serde(default = "default_interval")]
    interval: HumanDuration,
    title: Option<String>,
}

fn default_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(30 * 60))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    at: Option<TimeOfDay>,
    every: Option<HumanDuration>,
    #[serde(default = "default_zone")]
    timezone: Zone,
    #[serde(default = "default_empty")]
    empty: EmptyDigest,
    #[serde(default = "default_related")]
    related: RelatedMode,
    #[serde(default = "default_retry")]
    retry: HumanDuration,
}

fn default_related() -> RelatedMode {
    RelatedMode::Show
}
fn default_retry() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

fn default_at() -> TimeOfDay {
    TimeOfDay(Time::constant(7, 0, 0, 0))
}
fn default_zone() -> Zone {
    Zone {
        name: "UTC".into(),
        zone: TimeZone::UTC,
    }
}
fn default_empty() -> EmptyDigest {
    EmptyDigest::Send
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
enum RawNotify {
    File {
        path: String,
        name: Option<String>,
    },
    Stdout {
        name: Option<String>,
    },
    Smtp {
        name: Option<String>,
        host: String,
        port: Option<u16>,
        tls: Option<SmtpTls>,
        from: String,
        to: OneOrMany,
        username: Option<String>,
        password_file: Option<String>,
        password_env: Option<String>,
        ca_file: Option<String>,
        timeout: Option<HumanDuration>,
    },
    Webhook {
        name: Option<String>,
        url: String,
        format: Option<WebhookFormat>,
        secret: Option<String>,
        secret_file: Option<String>,
        secret_env: Option<String>,
        timeout: Option<HumanDuration>,
    },
}

/// `to = "a@x"` or `to = ["a@x", "b@x"]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

/// Default limit for one SMTP or webhook delivery.
const DEFAULT_DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// At most one of the three ways to give a secret.
fn secret_source(
    base: &Path,
    inline: Option<&String>,
    file: Option<&String>,
    env: Option<&String>,
    key: &str,
) -> Result<Option<SecretSource>, String> {
    let given = [inline.is_some(), file.is_some(), env.is_some()]
        .iter()
        .filter(|g| **g)
        .count();
    if given > 1 {
        let keys = if inline.is_some() {
            format!("{key}, {key}_file and {key}_env")
        } else {
            format!("{key}_file and {key}_env")
        };
        return Err(format!("{keys} are alternatives; keep exactly one of them"));
    }
    Ok(if let Some(value) = inline {
        Some(SecretSource::Inline(value.clone()))
    } else if let Some(path) = file {
        Some(SecretSource::File(secret_path(base, path)))
    } else {
        env.map(|name| SecretSource::Env(name.clone()))
    })
}

/// Where a `*_file` secret is read from. A relative name is first looked up in systemd's
/// `$CREDENTIALS_DIRECTORY` (filled by `LoadCredential=`), so a unit can hand storywatch a
/// password without it ever sitting in the config folder; otherwise it resolves against the
/// config file's folder.
fn secret_path(base: &Path, name: &str) -> PathBuf {
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .filter(|_| Path::new(name).is_relative())
        .map(|dir| PathBuf::from(dir).join(name))
        .filter(|path| path.is_file());
    credential.unwrap_or_else(|| base.join(name))
}

/// A duration written as `"30m"`.
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(HumanDuration)
            .map_err(de::Error::custom)
    }
}

/// A duration, or `"off"` for none.
struct MaybeDuration(Option<Duration>);

impl<'de> Deserialize<'de> for MaybeDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.trim().eq_ignore_ascii_case("off") {
            return Ok(MaybeDuration(None));
        }
        parse_duration(&text)
            .map(|d| MaybeDuration(Some(d)))
            .map_err(|err| de::Error::custom(format!("{err}, or \"off\"")))
    }
}

/// A size written as `"5MiB"`, `"512KiB"` or a plain number of bytes.
struct ByteSize(u64);

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_byte_size(&text).map(ByteSize).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid size {text:?}: write a number with an optional unit, e.g. \"5MiB\", \"512KiB\", \"1000000\""
            ))
        })
    }
}

fn parse_byte_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    let multiplier = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "KiB" => 1024,
        "MB" => 1000 * 1000,
        "MiB" => 1024 * 1024,
        "GB" => 1000 * 1000 * 1000,
        "GiB" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// A local time of day written as `"07:00"`.
struct TimeOfDay(Time);

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse::<Time>().map(TimeOfDay).map_err(|_| {
            de::Error::custom(format!(
                "invalid time of day {text:?}: write 24-hour HH:MM, e.g. \"07:00\""
            ))
        })
    }
}

/// An IANA time zone written as `"Europe/London"`.
struct Zone {
    name: String,
    zone: TimeZone,
}

impl<'de> Deserialize<'de> for Zone {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        let zone = TimeZone::get(&name).map_err(|_| {
            de::Error::custom(format!(
                "unknown time zone {name:?}: use an IANA name such as \"Europe/London\", \"America/New_York\" or \"UTC\""
            ))
        })?;
        Ok(Zone { name, zone })
    }
}

impl Config {
    /// Every story the config follows, in config order: [`Config::story`] first, then
    /// [`Config::other_stories`].
    pub fn stories(&self) -> impl Iterator<Item = &StoryConfig> {
        std::iter::once(&self.story).chain(&self.other_stories)
    }

    /// Reads and validates the config file at `path`; relative state paths resolve against
    /// `$STATE_DIRECTORY`, else beside the file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path, || None)
    }

    /// Reads the config [`Config::discover`] found, for a service or its user: relative state
    /// paths resolve against `$STATE_DIRECTORY`, else the user's data folder
    /// ([`user_data_directory`]), never beside the config. So the daemon of a `systemctl --user`
    /// unit and `storywatch items list` typed by its user open the same database, whichever
    /// folder (and whatever systemd version's idea of a user `StateDirectory=`) is involved.
    pub fn load_discovered(path: &Path) -> Result<Config, ConfigError> {
        Config::read(path, user_data_directory)
    }

    /// Reads the file at `path`, with state in `$STATE_DIRECTORY`, else `state`, else beside it.
    fn read(path: &Path, state: fn() -> Option<PathBuf>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
            path: path.to_path_buf(),
            cause,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let state = state_directory()
            .or_else(state)
            .unwrap_or_else(|| base.clone());
        Config::parse_with_state(&text, ConfigOrigin::File(path.to_path_buf()), &base, &state)
    }

    /// The compiled-in default, with relative paths read against the working directory.
    pub fn bundled() -> Result<Config, ConfigError> {
        let cwd = std::env::current_dir().unwrap_or_default();
        let state = state_directory().unwrap_or_else(|| cwd.clone());
        Config::parse_with_state(BUNDLED_CONFIG, ConfigOrigin::Bundled, &cwd, &state)
    }

    /// Finds the config to use when `--config` and `$STORYWATCH_CONFIG` are not given:
    /// `$CONFIGURATION_DIRECTORY/storywatch.toml` (systemd's `ConfigurationDirectory=`), then
    /// `$XDG_CONFIG_HOME/storywatch/storywatch.toml` (or `~/.config/…`), whichever exists first;
    /// `None` means the bundled default.
    pub fn discover() -> Option<PathBuf> {
        let systemd = std::env::var_os("CONFIGURATION_DIRECTORY")
            .and_then(|dirs| std::env::split_paths(&dirs).next())
            .map(|dir| dir.join("storywatch.toml"));
        let xdg = user_config_home().map(|dir| dir.join("storywatch").join("storywatch.toml"));
        [systemd, xdg]
            .into_iter()
            .flatten()
            .find(|path| path.is_file())
    }

    /// Parses and validates `text`; `base` is the folder relative paths resolve against.
    pub fn parse(text: &str, origin: ConfigOrigin, base: &Path) -> Result<Config, ConfigError> {
        Config::parse_with_state(text, origin, base, base)
    }

    /// Like [`Config::parse`], but relative *state* paths (the database, file-channel folders)
    /// resolve against `state` — systemd's `$STATE_DIRECTORY` when set — so a packaged service
    /// keeps its data in `/var/lib/storywatch` whatever folder the config sits in.
    pub fn parse_with_state(
        text: &str,
        origin: ConfigOrigin,
        base: &Path,
        state: &Path,
    ) -> Result<Config, ConfigError> {
        let locate = |span: Option<Range<usize>>, message: String| {
            let (line, column) = span.map_or((1, 1), |span| line_column(text, span.start));
            ConfigError::Invalid {
                origin: origin.clone(),
                line,
                column,
                message,
            }
        };
        let raw: RawConfig = toml::from_str(text).map_err(|err| {
            let message = explain_toml_message(err.message());
            locate(err.span(), message)
        })?;

        let digest_span = text.find("[digest]").map(|start| start..start);
        // One `[story]`, or several `[[stories]]`: never both, never none.
        let stories_span = || {
            text.lines()
                .scan(0, |offset, line| {
                    let start = *offset;
                    *offset += line.len() + 1;
                    Some((start, line))
                })
                .find(|(_, line)| line.trim_start().starts_with("[[stories]]"))
                .map(|(start, _)| start..start)
        };
        let raw_stories: Vec<(RawStory, &'static str)> = match (raw.story, raw.stories) {
            (Some(_), more) if !more.is_empty() => {
                return Err(locate(
                    stories_span(),
                    "the config has both [story] and [[stories]]; keep [story] for one story, \
                     or turn it into a [[stories]] entry to follow several"
                        .into(),
                ));
            }
            (Some(one), _) => vec![(one, "[story]")],
            (None, more) if more.is_empty() => {
                return Err(locate(
                    None,
                    "no story to follow; add a [story] section with name and seeds (or \
                     [[stories]] entries to follow several)"
                        .into(),
                ));
            }
            (None, more) => more
                .into_iter()
                .map(|s| (s.into_inner(), "[[stories]]"))
                .collect(),
        };
        let mut stories: Vec<StoryConfig> = Vec::with_capacity(raw_stories.len());
        for (raw_story, section) in raw_stories {
            let seeds_span = raw_story.seeds.span();
            let seeds = base.join(raw_story.seeds.get_ref());
            let seed_source = if origin == ConfigOrigin::Bundled {
                SeedSource::Bundled
            } else {
                SeedSource::Folder(seeds.clone())
            };
            if origin != ConfigOrigin::Bundled && !seeds.is_dir() {
                return Err(locate(
                    Some(seeds_span),
                    format!(
                        "seed folder {} does not exist; set {section} seeds to a folder of \
                         baseline articles (relative paths start at the config file's folder)",
                        seeds.display()
                    ),
                ));
            }
            if origin != ConfigOrigin::Bundled
                && crate::story::seeds::seed_files(&seeds).is_ok_and(|f| f.is_empty())
            {
                return Err(locate(
                    Some(seeds_span),
                    format!(
                        "seed folder {} holds no .txt files; add one plain-text file per \
                         baseline article, or set {section} seeds to the folder that has them",
                        seeds.display()
                    ),
                ));
            }
            let name = raw_story.name.get_ref().clone();
            if name.trim().is_empty() {
                return Err(locate(
                    Some(raw_story.name.span()),
                    format!("{section} name is empty; give the story a name"),
                ));
            }
            if stories.iter().any(|s| s.name == name) {
                return Err(locate(
                    Some(raw_story.name.span()),
                    format!(
                        "two stories are named {name:?}; give each story its own name (matches \
                         are stored under it)"
                    ),
                ));
            }
            stories.push(StoryConfig {
                name,
                seeds: seed_source,
                tuning: raw_story.tuning,
            });
        }
        let mut stories = stories.into_iter();
        let Some(first_story) = stories.next() else {
            return Err(locate(
                None,
                "no story to follow; add a [story] section".into(),
            ));
        };
        let other_stories: Vec<StoryConfig> = stories.collect();

        let concurrency = *raw.fetch.concurrency.get_ref();
        if concurrency == 0 {
            return Err(locate(
                Some(raw.fetch.concurrency.span()),
                "[fetch] concurrency must be at least 1".into(),
            ));
        }
        let per_host = *raw.fetch.per_host.get_ref();
        if per_host == 0 {
            return Err(locate(
                Some(raw.fetch.per_host.span()),
                "[fetch] per_host must be at least 1, e.g. 2".into(),
            ));
        }
        let min_interval = raw.fetch.min_interval.get_ref().0;
        let max_interval = raw.fetch.max_interval.get_ref().0;
        if min_interval < Duration::from_secs(60) {
            return Err(locate(
                Some(raw.fetch.min_interval.span()),
                "[fetch] min_interval must be at least \"1m\"; publishers ban clients that poll more often".into(),
            ));
        }
        if max_interval < min_interval {
            return Err(locate(
                Some(raw.fetch.max_interval.span()),
                "[fetch] max_interval is shorter than min_interval; make it at least as long, e.g. \"24h\"".into(),
            ));
        }
        if raw.fetch.timeout.get_ref().0.is_zero() {
            return Err(locate(
                Some(raw.fetch.timeout.span()),
                "[fetch] timeout must be longer than 0s, e.g. \"20s\"".into(),
            ));
        }

        let mut feeds: Vec<FeedConfig> = Vec::with_capacity(raw.feeds.len());
        for spanned in &raw.feeds {
            let feed = spanned.get_ref();
            let url = feed.url.get_ref().trim();
            match url::Url::parse(url) {
                Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                _ => {
                    return Err(locate(
                        Some(feed.url.span()),
                        format!(
                            "feed url {url:?} is not an absolute http(s) URL; write it as \"https://example.com/feed.xml\""
                        ),
                    ));
                }
            }
            if feed.interval.0 < Duration::from_secs(60) {
                return Err(locate(
                    Some(spanned.span()),
                    format!(
                        "feed {url} has an interval under 1m; publishers ban clients that poll that often, use \"15m\" or more"
                    ),
                ));
            }
            if feeds.iter().any(|f| f.url == url) {
                return Err(locate(
                    Some(feed.url.span()),
                    format!("feed {url} is listed twice; remove one entry"),
                ));
            }
            feeds.push(FeedConfig {
                url: url.to_string(),
                interval: feed.interval.0,
                title: feed.title.clone(),
            });
        }

        let mut notify: Vec<NotifyConfig> = Vec::new();
        for spanned in raw.notify {
            let span = spanned.span();
            let (name, kind, channel) = match spanned.into_inner() {
                RawNotify::File { path, name } => (
                    name.clone(),
                    "file",
                    Channel::File {
                        folder: state.join(path),
                    },
                ),
                RawNotify::Stdout { name } => (name.clone(), "stdout", Channel::Stdout),
                RawNotify::Smtp {
                    name,
                    host,
                    port,
                    tls,
                    from,
                    to,
                    username,
                    password_file,
                    password_env,
                    ca_file,
                    timeout,
                } => {
                    let smtp = smtp_config(
                        base,
                        SmtpParts {
                            host,
                            port,
                            tls,
                            from,
                            to: to.into_vec(),
                            username,
                            password_file,
                            password_env,
                            ca_file,
                            timeout,
                        },
                    )
                    .map_err(|message| locate(Some(span.clone()), message))?;
                    (name, "smtp", Channel::Smtp(smtp))
                }
                RawNotify::Webhook {
                    name,
                    url,
                    format,
                    secret,
                    secret_file,
                    secret_env,
                    timeout,
                } => {
                    let url = url.trim().to_string();
                    match url::Url::parse(&url) {
                        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
                        _ => {
                            return Err(locate(
                                Some(span),
                                format!(
                                    "webhook url {:?} is not an absolute http(s) URL; write it as \"https://hooks.example.com/…\"",
                                    redacted_url(&url)
                                ),
                            ));
                        }
                    }
                    let secret = secret_source(
                        base,
                        secret.as_ref(),
                        secret_file.as_ref(),
                        secret_env.as_ref(),
                        "secret",
                    )
                    .map_err(|message| locate(Some(span.clone()), message))?;
                    let timeout = timeout.map_or(DEFAULT_DELIVERY_TIMEOUT, |t| t.0);
                    if timeout.is_zero() {
                        return Err(locate(
                            Some(span),
                            "webhook timeout must be longer than 0s, e.g. \"30s\"".into(),
                        ));
                    }
                    let webhook = WebhookConfig {
                        url,
                        format: format.unwrap_or(WebhookFormat::Json),
                        secret,
                        timeout,
                    };
                    (name, "webhook", Channel::Webhook(webhook))
                }
            };
            let name = name.unwrap_or_else(|| {
                let same_kind = notify.iter().filter(|n| n.name.starts_with(kind)).count();
                if same_kind == 0 {
                    kind.to_string()
                } else {
                    format!("{kind}-{}", same_kind + 1)
                }
            });
            if notify.iter().any(|n| n.name == name) {
                return Err(locate(
                    Some(span),
                    format!(
                        "two [[notify]] channels are named {name:?}; give each a unique name = \"…\""
                    ),
                ));
            }
            notify.push(NotifyConfig { name, channel });
        }

        let web = match &raw.web {
            None => None,
            Some(spanned) => Some(parse_web(spanned, base, &locate)?),
        };

        let digest = raw.digest.unwrap_or(RawDigest {
            at: None,
            every: None,
            timezone: default_zone(),
            empty: default_empty(),
            related: default_related(),
            retry: default_retry(),
        });
        if digest.at.is_some() && digest.every.is_some() {
            return Err(locate(
                digest_span.clone(),
                "[digest] has both `at` and `every`; keep `at = \"07:00\"` for a daily digest \
                 or `every = \"12h\"` for a fixed period, not both"
                    .into(),
            ));
        }
        if digest.every.as_ref().is_some_and(|e| e.0.is_zero()) {
            return Err(locate(
                digest_span,
                "[digest] every must be longer than 0s, e.g. \"12h\"".into(),
            ));
        }
        Ok(Config {
            origin,
            storage: StorageConfig {
                database: state.join(&raw.storage.database),
            },
            story: first_story,
            other_stories,
            fetch: FetchConfig {
                timeout: raw.fetch.timeout.get_ref().0,
                connect_timeout: raw.fetch.connect_timeout.0,
                max_body_bytes: raw.fetch.max_body_size.0,
                allow_private_networks: raw.fetch.allow_private_networks,
                concurrency,
                user_agent: raw.fetch.user_agent,
                per_host,
                min_interval,
                max_interval,
                adaptive: raw.fetch.adaptive,
                backlog_max_age: raw.fetch.backlog_max_age.0,
            },
            feeds,
            digest: DigestConfig {
                at: digest.at.unwrap_or_else(default_at).0,
                every: digest.every.map(|e| e.0),
                retry: digest.retry.0,
                related: digest.related,
                timezone: digest.timezone.zone,
                timezone_name: digest.timezone.name,
                empty: digest.empty,
            },
            notify,
            web,
        })
    }
}

/// The keys of an smtp entry, before validation.
struct SmtpParts {
    host: String,
    port: Option<u16>,
    tls: Option<SmtpTls>,
    from: String,
    to: Vec<String>,
    username: Option<String>,
    password_file: Option<String>,
    password_env: Option<String>,
    ca_file: Option<String>,
    timeout: Option<HumanDuration>,
}

/// Validates an smtp entry; the error says what to change.
/// Whether `host` names this machine without a DNS lookup: `localhost` (and `*.localhost`,
/// RFC 6761) or a loopback address. Only then may credentials travel without TLS.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host.to_ascii_lowercase();
    lower == "localhost"
        || lower.ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn smtp_config(base: &Path, raw: SmtpParts) -> Result<SmtpConfig, String> {
    use lettre::message::Mailbox;
    let host = raw.host.trim().to_string();
    if host.is_empty() || host.contains(['/', ' ', ':']) {
        return Err(format!(
            "smtp host {host:?} is not a host name; write only the name, e.g. host = \"smtp.example.com\" and the port in port = 587"
        ));
    }
    let tls = raw.tls.unwrap_or(SmtpTls::Starttls);
    let port = raw.port.unwrap_or(match tls {
        SmtpTls::None => 25,
        SmtpTls::Starttls => 587,
        SmtpTls::Tls => 465,
    });
    raw.from.parse::<Mailbox>().map_err(|err| {
        format!(
            "smtp from {:?} is not an e-mail address ({err}); write \"storywatch <me@example.com>\" or \"me@example.com\"",
            raw.from
        )
    })?;
    if raw.to.is_empty() {
        return Err(
            "smtp to is empty; list at least one recipient, e.g. to = [\"me@example.com\"]".into(),
        );
    }
    for to in &raw.to {
        to.parse::<Mailbox>().map_err(|err| {
            format!(
                "smtp recipient {to:?} is not an e-mail address ({err}); write \"me@example.com\""
            )
        })?;
    }
    let password = secret_source(
        base,
        None,
        raw.password_file.as_ref(),
        raw.password_env.as_ref(),
        "password",
    )?;
    if raw.username.is_some() != password.is_some() {
        return Err(if raw.username.is_some() {
            "smtp username is set but no password; add password_file = \"…\" or password_env = \"…\"".into()
        } else {
            "smtp password is set but no username; add username = \"…\"".into()
        });
    }
    if tls == SmtpTls::None && raw.username.is_some() && !is_loopback_host(&host) {
        return Err(format!(
            "smtp tls = \"none\" would send the username and password to {host:?} in clear text; \
             use tls = \"starttls\" or tls = \"tls\" (plain text is only for a relay on localhost)"
        ));
    }
    let timeout = raw.timeout.map_or(DEFAULT_DELIVERY_TIMEOUT, |t| t.0);
    if timeout.is_zero() {
        return Err("smtp timeout must be longer than 0s, e.g. \"30s\"".into());
    }
    Ok(SmtpConfig {
        host,
        port,
        tls,
        from: raw.from,
        to: raw.to,
        username: raw.username,
        password,
        ca_file: raw.ca_file.map(|f| base.join(f)),
        timeout,
    })
}

/// Validates `[web]`: a parseable address, at most one token source, a readable token file, and
/// a token whenever the address is not loopback (anyone on the network could reach the page).
fn parse_web(
    spanned: &Spanned<RawWeb>,
    base: &Path,
    locate: &impl Fn(Option<Range<usize>>, String) -> ConfigError,
) -> Result<WebConfig, ConfigError> {
    let raw = spanned.get_ref();
    let (listen_text, listen_span) = match &raw.listen {
        Some(l) => (l.get_ref().trim().to_string(), Some(l.span())),
        None => (DEFAULT_WEB_LISTEN.to_string(), Some(spanned.span())),
    };
    let listen: std::net::SocketAddr = listen_text.parse().map_err(|_| {
        locate(
            listen_span.clone(),
            format!(
                "[web] listen {listen_text:?} is not an address with a port; write e.g. \"{DEFAULT_WEB_LISTEN}\" or \"[::1]:8470\""
            ),
        )
    })?;
    let token = match (&raw.token, &raw.token_file) {
        (Some(_), Some(file)) => {
            return Err(locate(
                Some(file.span()),
                "[web] has both token and token_file; keep one".into(),
            ));
        }
        (Some(token), None) => Some((token.get_ref().trim().to_string(), token.span())),
        (None, Some(file)) => {
            let path = secret_path(base, file.get_ref());
            let text = std::fs::read_to_string(&path).map_err(|err| {
                locate(
                    Some(file.span()),
                    format!(
                        "[web] token_file {} cannot be read ({err}); create it with a random token, e.g. `openssl rand -hex 24 > {}`",
                        path.display(),
                        path.display()
                    ),
                )
            })?;
            Some((text.trim().to_string(), file.span()))
        }
        (None, None) => None,
    };
    if let Some((token, span)) = &token
        && token.chars().count() < MIN_TOKEN_LEN
    {
        return Err(locate(
            Some(span.clone()),
            format!(
                "[web] token is shorter than {MIN_TOKEN_LEN} characters; use a random one, e.g. from `openssl rand -hex 24`"
            ),
        ));
    }
    if let Some((token, span)) = &token
        && !token
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, ';' | ',' | '"' | '\\'))
    {
        // The token travels in a cookie and an HTTP header: keep it to characters both carry.
        return Err(locate(
            Some(span.clone()),
            "[web] token may only use printable ASCII without spaces, ; , \" or \\; use e.g. `openssl rand -hex 24`".into(),
        ));
    }
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(locate(
            listen_span,
            format!(
                "[web] listen {listen} is reachable from other machines but no token is set; add token_file = \"web-token\" (or token = \"…\"), or listen on \"{DEFAULT_WEB_LISTEN}\""
            ),
        ));
    }
    Ok(WebConfig {
        listen,
        token: token.map(|(t, _)| t),
    })
}

/// systemd's `$STATE_DIRECTORY` (the first, when it lists several).
fn state_directory() -> Option<PathBuf> {
    std::env::var_os("STATE_DIRECTORY").and_then(|dirs| std::env::split_paths(&dirs).next())
}

/// An XDG base directory: `$var` when it is an absolute path (the XDG rules ignore relative
/// ones), else `home_relative` under `$HOME`.
fn xdg_base(var: &str, home_relative: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .filter(|home| home.is_absolute())
                .map(|home| home.join(home_relative))
        })
}

/// The user's config base folder: `$XDG_CONFIG_HOME`, else `~/.config`. User units live in its
/// `systemd/user`, storywatch's config in its `storywatch`.
pub fn user_config_home() -> Option<PathBuf> {
    xdg_base("XDG_CONFIG_HOME", ".config")
}

/// The user's data base folder: `$XDG_DATA_HOME`, else `~/.local/share`.
pub fn user_data_home() -> Option<PathBuf> {
    xdg_base("XDG_DATA_HOME", ".local/share")
}

/// The user's data folder for storywatch, where a discovered config keeps its database:
/// `storywatch` in [`user_data_home`].
pub fn user_data_directory() -> Option<PathBuf> {
    user_data_home().map(|dir| dir.join("storywatch"))
}

/// Adds the fix to toml's own messages where it only says what is wrong.
fn explain_toml_message(message: &str) -> String {
    let message = message.trim();
    if message.starts_with("unknown field") {
        format!("{message}; remove the key or correct its spelling (README.md lists every key)")
    } else if message.starts_with("missing field") {
        format!("{message}; add it (README.md lists every key)")
    } else if message.starts_with("invalid type") && message.contains("expected a string") {
        format!(
            "{message}; write the value in double quotes: durations (\"20s\", \"30m\"), times \
             (\"07:00\"), sizes (\"5MiB\"), paths and URLs are strings"
        )
    } else {
        message.to_string()
    }
}

/// 1-based line and column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeds_base() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config")
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, ConfigOrigin::File("test.toml".into()), &seeds_base())
    }

    const MINIMAL: &str = "[story]\nname = \"s\"\nseeds = \"../seeds\"\n";

    const TWO_STORIES: &str = "[[stories]]\nname = \"fentanyl\"\nseeds = \"../seeds\"\n\n\
        [[stories]]\nname = \"ports\"\nseeds = \"../tests/fixtures/stories/mexico-ports\"\n\
        add_terms = [\"Manzanillo\"]\n";

    #[test]
    fn several_stories_keep_config_order_and_their_own_tuning() {
        let config = parse(TWO_STORIES).unwrap();
        let names: Vec<&str> = config.stories().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["fentanyl", "ports"]);
        assert_eq!(config.story.name, "fentanyl");
        assert_eq!(config.other_stories[0].tuning.add_terms, ["Manzanillo"]);
        assert!(parse(MINIMAL).unwrap().other_stories.is_empty());
    }

    #[test]
    fn story_and_stories_together_name_the_stories_line() {
        let text = format!("{MINIMAL}\n{TWO_STORIES}");
        let err = parse(&text).unwrap_err().to_string();
        assert!(
            err.contains("test.toml:5:1") && err.contains("both [story] and [[stories]]"),
            "{err}"
        );
        let err = parse("[fetch]\ntimeout = \"5s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no story to follow"), "{err}");
        let twice = TWO_STORIES.replace("\"ports\"", "\"fentanyl\"");
        let err = parse(&twice).unwrap_err().to_string();
        assert!(err.contains("two stories are named \"fentanyl\""), "{err}");
        let missing = TWO_STORIES.replace("mexico-ports", "nowhere");
        let err = parse(&missing).unwrap_err().to_string();
        assert!(err.contains("set [[stories]] seeds"), "{err}");
    }

    #[test]
    fn bundled_config_is_valid() {
        let config = Config::parse(BUNDLED_CONFIG, ConfigOrigin::Bundled, &seeds_base()).unwrap();
        assert!(config.feeds.len() >= 10);
        assert_eq!(config.digest.timezone_name, "Europe/London");
        assert_eq!(config.notify[0].name, "file");
        assert!(!config.fetch.allow_private_networks);
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let config = parse(MINIMAL).unwrap();
        assert_eq!(config.fetch.timeout, Duration::from_secs(20));
        assert_eq!(config.fetch.max_body_bytes, 5 * 1024 * 1024);
        assert_eq!(config.fetch.per_host, 2);
        assert_eq!(config.fetch.min_interval, Duration::from_secs(300));
        assert_eq!(config.fetch.max_interval, Duration::from_secs(86_400));
        assert_eq!(
            config.fetch.backlog_max_age,
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(config.digest.at, Time::constant(7, 0, 0, 0));
        assert!(config.storage.database.ends_with("storywatch.db"));
    }

    #[test]
    fn unknown_key_names_file_line_and_fix() {
        let err = parse(&format!("{MINIMAL}[fetch]\ntimout = \"5s\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml:5:1:"), "{err}");
        assert!(
            err.contains("timout") && err.contains("remove the key"),
            "{err}"
        );
    }

    #[test]
    fn bad_duration_names_line_and_fix() {
        let err = parse(&format!(
            "{MINIMAL}[[feeds]]\nurl = \"https://a.example/f\"\ninterval = \"30 minutes\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("test.toml:6:12:"), "{err}");
        assert!(err.contains("e.g. \"30s\""), "{err}");
    }

    #[test]
    fn zero_timeout_and_unquoted_durations_name_their_line() {
        let err = parse(&format!("{MINIMAL}[fetch]\ntimeout = \"0s\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml:5:11:"), "{err}");
        let err = parse(&format!("{MINIMAL}[fetch]\ntimeout = 20\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml:5:11:"), "{err}");
        assert!(err.contains("double quotes"), "{err}");
    }

    #[test]
    fn an_unreadable_config_file_is_named_once_with_its_cause() {
        let err = Config::load(Path::new("/nonexistent/storywatch.toml")).unwrap_err();
        let chain = format!("{:#}", anyhow::Error::from(err));
        assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
        assert!(chain.contains("--config"), "{chain}");
    }

    #[test]
    fn missing_seed_folder_names_line_and_fix() {
        let err = parse("[story]\nname = \"s\"\nseeds = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml:3:9:"), "{err}");
        assert!(
            err.contains("does not exist") && err.contains("set [story] seeds"),
            "{err}"
        );
    }

    #[test]
    fn empty_seed_folder_names_line_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.md"), "not a seed").unwrap();
        let text = format!(
            "[story]\nname = \"s\"\nseeds = {:?}\n",
            dir.path().display().to_string()
        );
        let err = parse(&text).unwrap_err().to_string();
        assert!(err.starts_with("test.toml:3:9:"), "{err}");
        assert!(
            err.contains("holds no .txt files") && err.contains("set [story] seeds"),
            "{err}"
        );
    }

    #[test]
    fn bad_zone_time_size_and_url_are_rejected() {
        for (extra, needle) in [
            ("[digest]\ntimezone = \"Mars/Olympus\"\n", "IANA"),
            ("[digest]\nat = \"7am\"\n", "HH:MM"),
            ("[fetch]\nmax_body_size = \"lots\"\n", "5MiB"),
            ("[[feeds]]\nurl = \"ftp://x.example/f\"\n", "http(s)"),
            (
                "[[feeds]]\nurl = \"https://x.example/f\"\ninterval = \"10s\"\n",
                "15m",
            ),
            ("[[notify]]\nkind = \"pigeon\"\n", "pigeon"),
            ("[fetch]\nper_host = 0\n", "per_host must be at least 1"),
            ("[fetch]\nmin_interval = \"10s\"\n", "at least \"1m\""),
            (
                "[fetch]\nmin_interval = \"1h\"\nmax_interval = \"30m\"\n",
                "max_interval is shorter",
            ),
            ("[fetch]\nbacklog_max_age = \"never\"\n", "\"off\""),
            (
                "[[feeds]]\nurl = \"https://x.example/f\"\nintreval = \"1h\"\n",
                "intreval",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}{extra}")).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
        }
    }

    #[test]
    fn relative_paths_resolve_against_config_folder() {
        let config = parse(&format!(
            "{MINIMAL}[[notify]]\nkind = \"file\"\npath = \"out\"\n"
        ))
        .unwrap();
        assert_eq!(
            config.notify[0].channel,
            Channel::File {
                folder: seeds_base().join("out")
            }
        );
        assert_eq!(
            config.story.seeds,
            SeedSource::Folder(seeds_base().join("../seeds"))
        );
    }

    #[test]
    fn unknown_story_key_is_rejected() {
        let err = parse("[story]\nname = \"s\"\nseeds = \"../seeds\"\nboost = 2\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("boost"), "{err}");
    }

    #[test]
    fn smtp_and_webhook_channels_parse_with_defaults() {
        let config = parse(&format!(
            "{MINIMAL}[[notify]]\nkind = \"smtp\"\nhost = \"mail.example.org\"\nfrom = \"sw <sw@example.org>\"\n\
             to = [\"a@example.org\", \"b@example.org\"]\nusername = \"sw\"\npassword_env = \"SW_PASS\"\n\
             [[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/hook\"\nformat = \"slack\"\nsecret_file = \"hook.key\"\n\
             [digest]\nevery = \"12h\"\nrelated = \"count\"\n"
        ))
        .unwrap();
        let Channel::Smtp(smtp) = &config.notify[0].channel else {
            panic!("{:?}", config.notify[0]);
        };
        assert_eq!((smtp.port, smtp.tls), (587, SmtpTls::Starttls));
        assert_eq!(smtp.to.len(), 2);
        assert_eq!(smtp.password, Some(SecretSource::Env("SW_PASS".into())));
        let Channel::Webhook(hook) = &config.notify[1].channel else {
            panic!("{:?}", config.notify[1]);
        };
        assert_eq!(hook.format, WebhookFormat::Slack);
        assert_eq!(
            hook.secret,
            Some(SecretSource::File(seeds_base().join("hook.key")))
        );
        assert_eq!(config.notify[1].name, "webhook");
        assert_eq!(config.digest.every, Some(Duration::from_secs(12 * 3600)));
        assert_eq!(config.digest.related, RelatedMode::Count);
    }

    #[test]
    fn only_loopback_hosts_may_take_credentials_in_clear() {
        for host in [
            "localhost",
            "LOCALHOST",
            "mail.localhost",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "smtp.example.com",
            "localhost.example.com",
            "10.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let text = format!("{:?}", SecretSource::Inline("hunter2".into()));
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn bad_channels_name_line_and_fix() {
        for (extra, line, needle) in [
            (
                "[[notify]]\nkind = \"smtp\"\nhost = \"smtp.example.com\"\ntls = \"none\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\nusername = \"u\"\npassword_env = \"P\"\n",
                4,
                "in clear text; use tls = \"starttls\"",
            ),
            (
                "[[notify]]\nkind = \"smtp\"\nhost = \"h\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\nusername = \"u\"\npassword_file = \"p\"\npassword_env = \"P\"\n",
                4,
                "keep exactly one",
            ),
            (
                "[[notify]]\nkind = \"smtp\"\nhost = \"h\"\nfrom = \"not an address\"\nto = \"x@y.z\"\n",
                4,
                "is not an e-mail address",
            ),
            (
                "[[notify]]\nkind = \"smtp\"\nhost = \"h\"\nfrom = \"a@b.c\"\nto = [\"x@y.z\"]\nusername = \"u\"\n",
                4,
                "password_file",
            ),
            (
                "[[notify]]\nkind = \"webhook\"\nurl = \"file:///etc/passwd\"\n",
                4,
                "http(s)",
            ),
            (
                "[[notify]]\nkind = \"webhook\"\nurl = \"https://h.example/\"\nformat = \"teams\"\n",
                4,
                "teams",
            ),
            ("[digest]\nat = \"07:00\"\nevery = \"1h\"\n", 4, "not both"),
        ] {
            let err = parse(&format!("{MINIMAL}{extra}")).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
            assert!(
                err.starts_with(&format!("test.toml:{line}:")),
                "{extra}: {err}"
            );
        }
    }

    #[test]
    fn state_paths_can_live_apart_from_the_config() {
        let state = PathBuf::from("/var/lib/storywatch");
        let text = format!("{MINIMAL}[[notify]]\nkind = \"file\"\npath = \"digests\"\n");
        let config =
            Config::parse_with_state(&text, ConfigOrigin::Bundled, &seeds_base(), &state).unwrap();
        assert_eq!(config.storage.database, state.join("storywatch.db"));
        assert_eq!(
            config.notify[0].channel,
            Channel::File {
                folder: state.join("digests")
            }
        );
        assert_eq!(config.story.seeds, SeedSource::Bundled);
    }

    #[test]
    fn web_section_defaults_to_loopback_and_is_off_when_absent() {
        assert_eq!(parse(MINIMAL).unwrap().web, None);
        let web = parse(&format!("{MINIMAL}[web]\n")).unwrap().web.unwrap();
        assert_eq!(web.listen.to_string(), DEFAULT_WEB_LISTEN);
        assert_eq!(web.token, None);
    }

    #[test]
    fn web_off_loopback_needs_a_token() {
        let err = parse(&format!("{MINIMAL}[web]\nlisten = \"0.0.0.0:8470\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("test.toml:5:10:"), "{err}");
        assert!(err.contains("token_file"), "{err}");
        let ok = parse(&format!(
            "{MINIMAL}[web]\nlisten = \"0.0.0.0:8470\"\ntoken = \"0123456789abcdef0123\"\n"
        ))
        .unwrap();
        assert_eq!(
            ok.web.unwrap().token.as_deref(),
            Some("0123456789abcdef0123")
        );
    }

    #[test]
    fn web_bad_values_are_located() {
        for (extra, needle) in [
            ("[web]\nlisten = \"localhost\"\n", "with a port"),
            ("[web]\ntoken = \"short\"\n", "shorter than"),
            ("[web]\ntoken_file = \"no-such-token\"\n", "cannot be read"),
            (
                "[web]\ntoken = \"0123456789abcdef0123\"\ntoken_file = \"x\"\n",
                "keep one",
            ),
            ("[web]\nport = 1\n", "port"),
            (
                "[web]\ntoken = \"0123456789 abcdef;0123\"\n",
                "printable ASCII",
            ),
        ] {
            let err = parse(&format!("{MINIMAL}{extra}")).unwrap_err().to_string();
            assert!(err.contains(needle), "{extra}: {err}");
            assert!(err.starts_with("test.toml:"), "{err}");
        }
    }

    #[test]
    fn backlog_can_be_turned_off() {
        let config = parse(&format!("{MINIMAL}[fetch]\nbacklog_max_age = \"off\"\n")).unwrap();
        assert_eq!(config.fetch.backlog_max_age, None);
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("5MiB"), Some(5 * 1024 * 1024));
        assert_eq!(parse_byte_size("100"), Some(100));
        assert_eq!(parse_byte_size("2 KB"), Some(2000));
        assert_eq!(parse_byte_size("x"), None);
    }

    #[test]
    fn webhook_urls_are_shown_without_their_secret_parts() {
        for (url, shown) in [
            (
                "https://hooks.slack.com/services/T000/B000/XXXXSECRET",
                "https://hooks.slack.com/…",
            ),
            (
                "https://discord.com/api/webhooks/123/TOKENSECRET",
                "https://discord.com/…",
            ),
            ("https://h.example/?token=SECRET", "https://h.example/…"),
            ("https://user:SECRET@h.example/", "https://h.example/…"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/"),
            ("hooks.slack.com/services/T/B/SECRET", "hooks.slack.com…"),
            ("ftp://u:SECRET@h.example/x", "ftp://h.example/…"),
        ] {
            assert_eq!(redacted_url(url), shown, "{url}");
        }
        let config = WebhookConfig {
            url: "https://hooks.slack.com/services/T/B/SECRET".into(),
            format: WebhookFormat::Slack,
            secret: None,
            timeout: Duration::from_secs(1),
        };
        assert!(!format!("{config:?}").contains("SECRET"));
    }
}
