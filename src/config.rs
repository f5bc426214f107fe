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
use serde::Deserialize;
use serde::de::{self, Deserializer};
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
    #[error("cannot read config file {path}: {source}; pass an existing file with --config")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but something in it is wrong.
    #[error("{origin}:{line}:{column}: {message}")]
    Invalid {
        origin: ConfigOrigin,
        line: usize,
        column: usize,
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
    /// `[story]`
    pub story: StoryConfig,
    /// `[fetch]`
    pub fetch: FetchConfig,
    /// `[[feeds]]`
    pub feeds: Vec<FeedConfig>,
    /// `[digest]`
    pub digest: DigestConfig,
    /// `[[notify]]`
    pub notify: Vec<NotifyConfig>,
}

/// `[storage]`: where the database lives.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The SQLite file, resolved.
    pub database: PathBuf,
}

/// `[story]`: the story being followed.
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

/// `[digest]`: when the daily digest goes out.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    /// Local time of day.
    pub at: Time,
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
    File { folder: PathBuf },
    /// Standard output.
    Stdout,
}

// ---------------------------------------------------------------------------------------------
// The file as written. Durations, times and zones are checked while deserialising so the TOML
// parser attaches the offending value's position to the error.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    storage: RawStorage,
    story: RawStory,
    #[serde(default)]
    fetch: RawFetch,
    #[serde(default)]
    feeds: Vec<Spanned<RawFeed>>,
    digest: Option<RawDigest>,
    #[serde(default)]
    notify: Vec<Spanned<RawNotify>>,
}

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
    name: String,
    seeds: Spanned<String>,
    #[serde(flatten)]
    tuning: Tuning,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    #[serde(default = "default_timeout")]
    timeout: HumanDuration,
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

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(20))
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
    #[serde(default = "default_at")]
    at: TimeOfDay,
    #[serde(default = "default_zone")]
    timezone: Zone,
    #[serde(default = "default_empty")]
    empty: EmptyDigest,
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
    File { path: String, name: Option<String> },
    Stdout { name: Option<String> },
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
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let state = state_directory().unwrap_or_else(|| base.clone());
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
        let xdg = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
            .map(|dir| dir.join("storywatch").join("storywatch.toml"));
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

        let seeds_span = raw.story.seeds.span();
        let seeds = base.join(raw.story.seeds.get_ref());
        let seed_source = if origin == ConfigOrigin::Bundled {
            SeedSource::Bundled
        } else {
            SeedSource::Folder(seeds.clone())
        };
        if origin != ConfigOrigin::Bundled && !seeds.is_dir() {
            return Err(locate(
                Some(seeds_span),
                format!(
                    "seed folder {} does not exist; set [story] seeds to a folder of baseline \
                     articles (relative paths start at the config file's folder)",
                    seeds.display()
                ),
            ));
        }
        if raw.story.name.trim().is_empty() {
            return Err(locate(
                None,
                "[story] name is empty; give the story a name".into(),
            ));
        }

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
        if raw.fetch.timeout.0.is_zero() {
            return Err(locate(
                None,
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
        for spanned in &raw.notify {
            let (name, kind, channel) = match spanned.get_ref() {
                RawNotify::File { path, name } => (
                    name.clone(),
                    "file",
                    Channel::File {
                        folder: state.join(path),
                    },
                ),
                RawNotify::Stdout { name } => (name.clone(), "stdout", Channel::Stdout),
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
                    Some(spanned.span()),
                    format!(
                        "two [[notify]] channels are named {name:?}; give each a unique name = \"…\""
                    ),
                ));
            }
            notify.push(NotifyConfig { name, channel });
        }

        let digest = raw.digest.unwrap_or(RawDigest {
            at: default_at(),
            timezone: default_zone(),
            empty: default_empty(),
        });
        Ok(Config {
            origin,
            storage: StorageConfig {
                database: state.join(&raw.storage.database),
            },
            story: StoryConfig {
                name: raw.story.name,
                seeds: seed_source,
                tuning: raw.story.tuning,
            },
            fetch: FetchConfig {
                timeout: raw.fetch.timeout.0,
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
                at: digest.at.0,
                timezone: digest.timezone.zone,
                timezone_name: digest.timezone.name,
                empty: digest.empty,
            },
            notify,
        })
    }
}

/// systemd's `$STATE_DIRECTORY` (the first, when it lists several).
fn state_directory() -> Option<PathBuf> {
    std::env::var_os("STATE_DIRECTORY").and_then(|dirs| std::env::split_paths(&dirs).next())
}

/// Adds the fix to toml's own messages where it only says what is wrong.
fn explain_toml_message(message: &str) -> String {
    let message = message.trim();
    if message.starts_with("unknown field") {
        format!("{message}; remove the key or correct its spelling (README.md lists every key)")
    } else if message.starts_with("missing field") {
        format!("{message}; add it (README.md lists every key)")
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
}
