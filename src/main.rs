//! The `storywatch` command line: parses arguments and runs one command.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use serde::Deserialize;

use storywatch::config::Config;
use storywatch::daemon::{self, Shutdown};
use storywatch::pipeline::{self, FeedOutcome, PollContext, Stories, Story};
use storywatch::review;
use storywatch::service::{InstanceLock, Notifier};
use storywatch::store::fts_query;
use storywatch::store::{MatchFilter, MatchRow, Review, Store};
use storywatch::story::MatchInput;
use storywatch::web;

/// storywatch watches news feeds for follow-up developments of a story you care about.
///
/// It polls the feeds in the config, decides for every new item whether it continues the story
/// told by the baseline articles in the seed folder, stores matches in SQLite and sends one
/// digest a day. Without --config it uses the bundled default config (feeds covering US–China
/// cooperation on fentanyl), with paths relative to the current folder.
#[derive(Parser, Debug)]
#[command(name = "storywatch", version, about, long_about)]
struct Cli {
    /// The config file (TOML). Default: the bundled config/storywatch.toml.
    #[arg(
        long,
        short,
        global = true,
        env = "STORYWATCH_CONFIG",
        value_name = "FILE"
    )]
    config: Option<PathBuf>,

    /// Log format: `text` (coloured on a terminal), `json` (one object per line, for log
    /// collectors) or `journald` (the journal's native protocol, with fields). Default: when
    /// stderr is systemd's journal stream, plain lines with `<N>` level prefixes and no
    /// timestamps (the journal adds its own); else text.
    #[arg(long, global = true, value_enum, env = "STORYWATCH_LOG_FORMAT")]
    log_format: Option<LogFormat>,

    #[command(subcommand)]
    command: Command,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
    Journald,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: poll feeds when due and send the daily digest, until Ctrl-C or SIGTERM.
    Run,
    /// Poll every feed now, store new items and print one line per feed.
    ///
    /// Exits 0 even when some feeds fail (their errors are printed and recorded); 3 when every
    /// feed failed (an outage a monitor should see); 1 when nothing could run (bad config,
    /// unusable database).
    Poll {
        /// Poll once and exit (the only mode; `run` polls continuously).
        #[arg(long)]
        once: bool,
    },
    /// Classify items read as JSON lines on stdin; never touches the database, so it uses
    /// the seeds alone (not what review taught the daemon).
    ///
    /// Each input line is an object with `id`, `title` and optionally `summary`, `content`,
    /// `published` (RFC 3339), `link`, `source`; other fields are ignored.
    Classify {
        /// Print one JSON object per line instead of a readable table.
        #[arg(long)]
        json: bool,
        /// The story to classify for, by name (default: the first story in the config).
        #[arg(long, value_name = "NAME")]
        story: Option<String>,
    },
    /// Build the digest now (--now, --dry-run), or list, show and resend past digests.
    #[command(args_conflicts_with_subcommands = true)]
    Digest {
        #[command(subcommand)]
        action: Option<DigestCommand>,
        /// Build the digest of every match not yet in a digest and deliver it now (the daemon
        /// sends digests on schedule).
        #[arg(long)]
        now: bool,
        /// Print the digest instead; deliver nothing and mark nothing as sent.
        #[arg(long)]
        dry_run: bool,
    },
    /// Export matched items.
    #[command(subcommand)]
    Export(ExportCommand),
    /// List, show and mark matched items.
    #[command(subcommand)]
    Items(ItemsCommand),
    /// Show the feeds and their health.
    #[command(subcommand)]
    Feeds(FeedsCommand),
    /// Validate the config and seeds and print the story profile's summary.
    Check,
    /// One screen on the service's state: feeds, digests, matches waiting, database size.
    Status,
    /// Serve the review page only (no polling, no digests), from the [web] section's address.
    Serve,
    /// Review unreviewed matches one at a time in the terminal.
    ///
    /// Reads one line per decision: r = relevant, x = irrelevant, s = skip, o = print (and on a
    /// terminal open) the link, q = quit. Each mark is for the shown story's match only.
    Review {
        /// Review this story's matches only (default: every story's, each shown with its story).
        #[arg(long, value_name = "NAME")]
        story: Option<String>,
    },
    /// Re-run the current profile over every stored item: shows new and dropped matches.
    ///
    /// Review state is kept; matches a person reviewed or a digest carried are never removed.
    Rescore {
        /// Only show what would change.
        #[arg(long)]
        dry_run: bool,
    },
    /// Measure the matcher on labelled items (JSON lines as in the shared eval set).
    ///
    /// Prints precision, recall, F1, miss and false-alarm rates, the TDT detection cost at the
    /// shipped and at the best threshold, follow-up vs re-report accuracy, a confusion table, and
    /// two reference matchers (a keyword query and tf-idf cosine) on the same items.
    Eval {
        /// The labelled file: one JSON object per line with id, title, summary, published, grade.
        #[arg(long, value_name = "FILE")]
        labels: PathBuf,
        /// Also list every mistake with the matcher's explanation.
        #[arg(long)]
        errors: bool,
    },
    /// Install storywatch as a systemd service.
    #[command(subcommand)]
    Service(ServiceCommand),
}

#[derive(Subcommand, Debug)]
enum ServiceCommand {
    /// Write the unit file, a config and the seeds where systemd and storywatch find them.
    ///
    /// System (default, as root): /etc/systemd/system/storywatch.service and /etc/storywatch/.
    /// User (--user): ~/.config/systemd/user/storywatch.service and ~/.config/storywatch/.
    /// An existing config or seed file is kept. Then run the `systemctl` commands printed.
    Install {
        /// Install for your user's service manager (`systemctl --user`).
        #[arg(long)]
        user: bool,
        /// Install under this folder instead of / (for packaging).
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ItemsCommand {
    /// List matches, newest first.
    List {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        /// Only matches in this review state.
        #[arg(long, value_enum)]
        state: Option<ReviewArg>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only this story's matches.
        #[arg(long, value_name = "NAME")]
        story: Option<String>,
    },
    /// Show one match in full.
    Show {
        /// The item id from `items list`.
        id: i64,
    },
    /// Record your judgement of a match.
    Mark {
        /// The item id from `items list`.
        id: i64,
        /// relevant, irrelevant, or unreviewed (undo).
        #[arg(value_enum)]
        state: ReviewArg,
        /// Mark its match in this story only (default: in every story it matched).
        #[arg(long, value_name = "NAME")]
        story: Option<String>,
    },
    /// Full-text search over every stored item, matched or not (best first).
    Search {
        /// Words that must all occur in the title or summary; `word*` matches a prefix.
        query: Vec<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Only this story's matches, and the items it did not match.
        #[arg(long, value_name = "NAME")]
        story: Option<String>,
    },
    /// Write every match (newest first) as JSON or CSV to stdout.
    Export {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportArg::Json)]
        format: ExportArg,
        /// Only matches in this review state.
        #[arg(long, value_enum)]
        state: Option<ReviewArg>,
        /// Only this story's matches.
        #[arg(long, value_name = "NAME")]
        story: Option<String>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ExportArg {
    Json,
    Csv,
}

#[derive(Subcommand, Debug)]
enum DigestCommand {
    /// List past digests, newest first, with each channel's delivery state.
    List {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Print one past digest.
    Show {
        /// The digest id from `digest list`.
        id: i64,
        /// markdown (as delivered), html (the e-mail's HTML part) or json (structured).
        #[arg(long, value_enum, default_value = "markdown")]
        format: ShowFormat,
    },
    /// Deliver a past digest to one channel again, now.
    Resend {
        /// The digest id from `digest list`.
        id: i64,
        /// The channel's name (`name = …` in its [[notify]] entry, else its kind).
        #[arg(long)]
        channel: String,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ShowFormat {
    Markdown,
    Html,
    Json,
}

#[derive(Subcommand, Debug)]
enum ExportCommand {
    /// Matched items as an Atom feed, newest first (items marked irrelevant are left out).
    Atom {
        /// Write to this file (replaced whole) instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// At most this many items.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
}

#[derive(Subcommand, Debug)]
enum FeedsCommand {
    /// List feeds with their health: last success, last error and its kind, failures in a row,
    /// next poll, and why a feed is disabled.
    List {
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Poll a feed disabled by a 410 Gone again (from the next poll on).
    Enable {
        /// The feed's URL as the config lists it (or the URL it moved to).
        url: String,
    },
    /// Add a feed to the config file's [[feeds]] list (comments and layout are kept).
    Add {
        /// Absolute http(s) URL of the feed.
        url: String,
        /// How often to poll it, e.g. 30m, 2h (default 30m).
        #[arg(long, value_name = "DURATION", value_parser = parse_interval)]
        interval: Option<std::time::Duration>,
        /// Display name (the feed's own title otherwise).
        #[arg(long)]
        title: Option<String>,
    },
    /// Remove a feed from the config file (its stored items stay in the database).
    Remove {
        /// The URL as the config lists it.
        url: String,
    },
    /// Add every feed of an OPML file (as exported by feed readers); duplicates are skipped and
    /// reported.
    Import {
        /// The OPML file.
        file: PathBuf,
    },
    /// Print the configured feeds as OPML 2.0 on stdout.
    Export,
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    storywatch::duration::parse_duration(text).map_err(|e| e.to_string())
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ReviewArg {
    Unreviewed,
    Relevant,
    Irrelevant,
}

impl From<ReviewArg> for Review {
    fn from(arg: ReviewArg) -> Review {
        match arg {
            ReviewArg::Unreviewed => Review::Unreviewed,
            ReviewArg::Relevant => Review::Relevant,
            ReviewArg::Irrelevant => Review::Irrelevant,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(matches!(cli.command, Command::Run), cli.log_format);
    match run(cli) {
        Ok(code) => code,
        // `storywatch items list | head` closes the pipe early: that is the reader's choice,
        // not an error worth a message.
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether the error is a write to a pipe whose reader has gone.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn init_logging(daemon: bool, format: Option<LogFormat>) {
    use std::io::IsTerminal;
    use tracing_subscriber::prelude::*;
    let default = if daemon {
        "storywatch=info"
    } else {
        "storywatch=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let registry = tracing_subscriber::registry().with(filter);
    let stderr_text = || tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // The journal stamps each line itself and reads the level from a `<N>` prefix
    // (sd-daemon(3)); colours would reach it as escape codes.
    let journal_lines = || {
        stderr_text().with_ansi(false).event_format(SyslogPrefix(
            tracing_subscriber::fmt::format()
                .without_time()
                .with_level(false),
        ))
    };
    match format {
        Some(LogFormat::Json) => registry.with(stderr_text().json()).init(),
        Some(LogFormat::Journald) => match tracing_journald::layer() {
            Ok(journald) => registry
                .with(journald.with_syslog_identifier("storywatch".into()))
                .init(),
            Err(_) => registry.with(journal_lines()).init(),
        },
        None if stderr_is_journal() => registry.with(journal_lines()).init(),
        Some(LogFormat::Text) | None => registry
            .with(stderr_text().with_ansi(std::io::stderr().is_terminal()))
            .init(),
    }
}

/// Whether stderr is the journal stream systemd connected: `$JOURNAL_STREAM` names its device
/// and inode, so a service whose stderr was redirected elsewhere still logs plain text.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsFd;
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((device, inode)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(fd) = std::io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    std::fs::File::from(fd)
        .metadata()
        .is_ok_and(|meta| device.parse() == Ok(meta.dev()) && inode.parse() == Ok(meta.ino()))
}

/// Prefixes each log line with its syslog priority (`<3>` error … `<7>` debug), which the
/// journal turns into the entry's level.
struct SyslogPrefix<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for SyslogPrefix<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            tracing::Level::DEBUG | tracing::Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

/// `--config` / `$STORYWATCH_CONFIG` (state beside it), else a discovered file (state in
/// `$STATE_DIRECTORY` or the user's data folder), else the bundled default.
fn load_config(path: Option<&PathBuf>) -> Result<Config> {
    if let Some(path) = path {
        return Ok(Config::load(path)?);
    }
    Ok(match Config::discover() {
        Some(path) => Config::load_discovered(&path)?,
        None => Config::bundled()?,
    })
}

fn open_store(config: &Config) -> Result<Store> {
    Ok(Store::open(&config.storage.database)?)
}

/// The database for a command that only looks (`check`, `feeds export`): read-only, never
/// created or migrated, `None` when there is none yet. One of an older schema is left for the
/// daemon to upgrade, with a note, and the command goes on without it.
fn open_store_to_read(config: &Config) -> Result<Option<Store>> {
    use storywatch::store::StoreError;
    match Store::open_read_only(&config.storage.database) {
        Ok(store) => Ok(Some(store)),
        Err(StoreError::Missing { .. }) => Ok(None),
        Err(err @ StoreError::TooOld { .. }) => {
            eprintln!("note: {err}");
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn run(cli: Cli) -> Result<ExitCode> {
    // Every command but `service install` works on a configuration.
    let config_path = cli.config.clone();
    let config = || load_config(config_path.as_ref());
    match cli.command {
        Command::Run => {
            let config = config()?;
            let stories = Stories::load(&config)?;
            let _lock = InstanceLock::acquire(&config.storage.database)?;
            let store = open_store(&config)?;
            let reload_with = loader(cli.config.clone());
            runtime()?.block_on(async {
                let (stop, shutdown) = Shutdown::new();
                let (reload_tx, reload) = tokio::sync::watch::channel(0u64);
                tokio::spawn(handle_signals(stop, reload_tx));
                let control = daemon::Control {
                    shutdown,
                    reload,
                    reload_with,
                    notifier: Notifier::from_env(),
                };
                daemon::run(config, stories, store, control).await
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Poll { once } => {
            if !once {
                bail!("`poll` needs --once; use `storywatch run` to poll continuously");
            }
            poll_once(config()?)
        }
        Command::Classify { json, story } => classify(&config()?, json, story.as_deref()),
        Command::Digest {
            action: Some(action),
            ..
        } => digest_command(config()?, action),
        Command::Digest {
            action: None,
            now,
            dry_run,
        } => {
            if !now && !dry_run {
                bail!(
                    "`digest` needs --now (or --dry-run), or one of list, show ID, resend ID --channel NAME; the daemon sends digests on schedule"
                );
            }
            digest(config()?, dry_run)
        }
        Command::Export(ExportCommand::Atom { output, limit }) => {
            export_atom(&config()?, output.as_deref(), limit)
        }
        Command::Items(command) => items(&config()?, command),
        Command::Feeds(FeedsCommand::List { json }) => feeds_list(&config()?, json),
        Command::Feeds(FeedsCommand::Enable { url }) => feeds_enable(&config()?, &url),
        Command::Feeds(FeedsCommand::Export) => feeds_export(&config()?),
        Command::Feeds(command) => feeds_edit(config_file(config_path.as_ref())?, command),
        Command::Check => check(&config()?),
        Command::Status => status(&config()?),
        Command::Eval { labels, errors } => eval(&config()?, &labels, errors),
        Command::Service(ServiceCommand::Install { user, root }) => service_install(user, &root),
        Command::Serve => serve(config()?, loader(cli.config.clone())),
        Command::Review { story } => review(&config()?, story.as_deref()),
        Command::Rescore { dry_run } => rescore(&config()?, dry_run),
    }
}

/// SIGINT and SIGTERM stop the daemon; SIGHUP asks it to reload config and seeds.
async fn handle_signals(
    stop: tokio::sync::watch::Sender<bool>,
    reload: tokio::sync::watch::Sender<u64>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!("cannot install signal handlers; only Ctrl-C will stop storywatch");
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop.send(true);
        return;
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading configuration and seeds");
                reload.send_modify(|generation| *generation += 1);
            }
        }
    }
    let _ = stop.send(true);
}

fn poll_once(config: Config) -> Result<ExitCode> {
    if config.feeds.is_empty() {
        bail!(
            "{}: no [[feeds]] configured; add at least one feed",
            config.origin
        );
    }
    let stories = Arc::new(Stories::load(&config)?);
    let mut store = open_store(&config)?;
    store.sync_feeds(&config.feeds)?;
    // Every feed now, except those the publisher asked to leave alone (reported, not polled).
    let now = Timestamp::now();
    let skipped: Vec<(String, String)> = store
        .feed_statuses()?
        .into_iter()
        .filter_map(|f| pipeline::once_skip_reason(&f, now).map(|why| (f.url, why)))
        .collect();
    let mut feeds = pipeline::with_intervals(store.active_feeds()?, &config.feeds);
    feeds.retain(|(row, _)| !skipped.iter().any(|(url, _)| *url == row.url));
    let store = Arc::new(Mutex::new(store));
    let reports = runtime()?.block_on(async {
        let ctx =
            PollContext::new(pipeline::fetcher(&config)?, store, stories).configured(&config.fetch);
        pipeline::poll_feeds(&ctx, feeds, config.fetch.concurrency).await
    })?;
    let mut out = std::io::stdout().lock();
    let (mut failed, mut new_items, mut new_matches) = (0, 0, 0);
    for report in &reports {
        let line = match &report.outcome {
            FeedOutcome::Fetched {
                items,
                new_items: n,
                new_matches: m,
                background,
            } => {
                new_items += n;
                new_matches += m;
                let backlog = if *background > 0 {
                    format!(
                        " ({background} older than [fetch] backlog_max_age, kept as background)"
                    )
                } else {
                    String::new()
                };
                format!(
                    "ok       {}  {items} items, {n} new, {m} new matches{backlog}",
                    report.url
                )
            }
            FeedOutcome::NotModified => format!("ok       {}  not modified", report.url),
            FeedOutcome::Failed { kind, message } => {
                failed += 1;
                format!("FAILED   {}  {kind}: {message}", report.url)
            }
        };
        writeln!(out, "{line}")?;
    }
    for (url, why) in &skipped {
        writeln!(out, "skipped  {url}  {why}")?;
    }
    let skipped_note = if skipped.is_empty() {
        String::new()
    } else {
        format!("; {} skipped", skipped.len())
    };
    writeln!(
        out,
        "polled {} feeds: {} ok, {failed} failed; {new_items} new items, {new_matches} new \
         matches{skipped_note}",
        reports.len(),
        reports.len() - failed
    )?;
    if failed > 0 && failed == reports.len() {
        // Every feed failed: still a completed poll (states and backoffs are recorded), but a
        // cron job or monitor should see a total outage, so it gets its own exit code.
        return Ok(ExitCode::from(EXIT_ALL_FEEDS_FAILED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Exit code of `poll --once` when every feed failed (a network outage, a wrong proxy):
/// distinct from 1, which means the poll could not run at all.
const EXIT_ALL_FEEDS_FAILED: u8 = 3;

/// One line of `classify` input.
#[derive(Deserialize)]
struct ClassifyInput {
    id: serde_json::Value,
    title: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    published: Option<String>,
}

/// The config's story named `name`, or an error that lists the names there are.
fn named_story<'a>(config: &'a Config, name: &str) -> Result<&'a storywatch::config::StoryConfig> {
    config.stories().find(|s| s.name == name).with_context(|| {
        let names: Vec<&str> = config.stories().map(|s| s.name.as_str()).collect();
        format!(
            "{}: no story named {name:?}; the config's stories are {}",
            config.origin,
            names.join(", ")
        )
    })
}

/// Checks a `--story NAME` filter against the config, so a typo is an error that lists the
/// stories rather than an empty answer.
fn story_filter(config: &Config, story: Option<&str>) -> Result<()> {
    if let Some(name) = story {
        named_story(config, name)?;
    }
    Ok(())
}

fn classify(config: &Config, json: bool, name: Option<&str>) -> Result<ExitCode> {
    let chosen = match name {
        None => &config.story,
        Some(name) => named_story(config, name)?,
    };
    let story = Story::load(chosen)?;
    let stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    let mut bad_lines = 0usize;
    for (number, line) in stdin.lines().enumerate() {
        let line = line.context("reading stdin")?;
        if line.trim().is_empty() {
            continue;
        }
        // A bad line is reported and skipped: the other items still get their verdicts.
        let input = match classify_input(&line, number + 1) {
            Ok(input) => input,
            Err(err) => {
                eprintln!("error: {err:#}");
                bad_lines += 1;
                continue;
            }
        };
        let verdict = story.profile.classify(&MatchInput {
            title: &input.title,
            summary: input.summary.as_deref().unwrap_or(""),
            content: input.content.as_deref().unwrap_or(""),
            published: input.published,
        });
        if json {
            let record = ClassifyOutput {
                id: &input.id,
                verdict: verdict.verdict,
                score: verdict.score,
                baseline: verdict.baseline.as_deref(),
                why: &verdict.why,
            };
            writeln!(out, "{}", serde_json::to_string(&record)?)?;
        } else {
            let id = match &input.id {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            writeln!(
                out,
                "{id}\t{}\t{:.3}\t{}\t{}",
                verdict.verdict.as_str(),
                verdict.score,
                verdict.baseline.as_deref().unwrap_or("-"),
                verdict.why.join("; ")
            )?;
        }
    }
    if bad_lines > 0 {
        eprintln!("classify: {bad_lines} line(s) skipped; see the errors above");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// One parsed line of `classify` input, with its publication time read.
struct ClassifyItem {
    id: serde_json::Value,
    title: String,
    summary: Option<String>,
    content: Option<String>,
    published: Option<Timestamp>,
}

/// Reads one `classify` input line (1-based `number`, for the error message).
fn classify_input(line: &str, number: usize) -> Result<ClassifyItem> {
    let input: ClassifyInput = serde_json::from_str(line).with_context(|| {
        format!("stdin line {number}: not a JSON object with \"id\" and \"title\"")
    })?;
    let published = match input.published.as_deref().filter(|p| !p.is_empty()) {
        Some(text) => Some(parse_published(text).with_context(|| {
            format!(
                "stdin line {number}: published {text:?} is not a time such as \
                 2025-01-31T12:00:00Z or 2025-01-31"
            )
        })?),
        None => None,
    };
    Ok(ClassifyItem {
        id: input.id,
        title: input.title,
        summary: input.summary,
        content: input.content,
        published,
    })
}

/// An RFC 3339 time; also a bare date or a local time without offset, read as UTC (what
/// exports from spreadsheets and other tools often carry).
fn parse_published(text: &str) -> Result<Timestamp> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    if let Ok(dt) = text.parse::<jiff::civil::DateTime>() {
        return Ok(dt.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp());
    }
    let date: jiff::civil::Date = text.parse()?;
    Ok(date.to_zoned(jiff::tz::TimeZone::UTC)?.timestamp())
}

/// One line of `classify --json` output, fields in the documented order.
#[derive(serde::Serialize)]
struct ClassifyOutput<'a> {
    id: &'a serde_json::Value,
    verdict: storywatch::story::VerdictKind,
    score: f64,
    baseline: Option<&'a str>,
    why: &'a [String],
}

fn digest(config: Config, dry_run: bool) -> Result<ExitCode> {
    let stories = Arc::new(Stories::load(&config)?);
    let mut store = open_store(&config)?;
    store.sync_feeds(&config.feeds)?;
    if dry_run {
        let input = store.digest_input(Timestamp::now())?;
        match storywatch::digest::render_markdown(
            &pipeline::render_context(&config, &stories),
            &input,
        ) {
            Some(markdown) => write!(std::io::stdout().lock(), "{markdown}")?,
            None => {
                println!("(empty period and [digest] empty = \"skip\": no digest would be sent)")
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let store = Arc::new(Mutex::new(store));
    runtime()?.block_on(async {
        match pipeline::build_digest(&config, &stories, &store).await? {
            Some(d) => eprintln!("digest {} stored with {} matches", d.id, d.match_count),
            None => eprintln!("nothing to send: empty period and [digest] empty = \"skip\""),
        }
        let pending = pipeline::deliver_pending(&config, &store).await?;
        if pending > 0 {
            bail!("{pending} deliveries failed and stay pending; the daemon retries them (see the log above)");
        }
        Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn digest_command(config: Config, action: DigestCommand) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match action {
        DigestCommand::List { json, limit } => {
            let store = open_store(&config)?;
            let digests = store.list_digests(limit)?;
            for d in &digests {
                let deliveries = store.deliveries(d.id)?;
                if json {
                    let record = serde_json::json!({
                        "id": d.id,
                        "created_at": d.created_at,
                        "period_start": d.period_start,
                        "period_end": d.period_end,
                        "matches": d.match_count,
                        "deliveries": deliveries,
                    });
                    writeln!(out, "{record}")?;
                    continue;
                }
                let states: Vec<String> = deliveries
                    .iter()
                    .map(|v| match v.state.as_str() {
                        "pending" => format!("{}: pending ({} attempts)", v.channel, v.attempts),
                        state => format!("{}: {state}", v.channel),
                    })
                    .collect();
                writeln!(
                    out,
                    "{:>5}  {}  {:>3} matches  {}",
                    d.id,
                    d.created_at
                        .to_zoned(config.digest.timezone.clone())
                        .strftime("%Y-%m-%d %H:%M"),
                    d.match_count,
                    states.join(", ")
                )?;
            }
            if digests.is_empty() && !json {
                writeln!(out, "no digests yet; `storywatch digest --now` builds one")?;
            }
        }
        DigestCommand::Show { id, format } => {
            let store = open_store(&config)?;
            let Some(d) = store.get_digest(id)? else {
                bail!("no digest with id {id}; `storywatch digest list` shows the ids");
            };
            let model: Option<storywatch::digest::Digest> = d
                .model
                .as_deref()
                .and_then(|json| serde_json::from_str(json).ok());
            match (format, model) {
                (ShowFormat::Markdown, _) => write!(out, "{}", d.markdown)?,
                (ShowFormat::Html, Some(model)) => {
                    write!(out, "{}", storywatch::digest::html::to_html(&model))?
                }
                (ShowFormat::Json, Some(model)) => {
                    writeln!(out, "{}", serde_json::to_string_pretty(&model)?)?
                }
                (_, None) => bail!(
                    "digest {id} was stored before structured digests were kept; only --format markdown is available"
                ),
            }
        }
        DigestCommand::Resend { id, channel } => {
            if !config.notify.iter().any(|n| n.name == channel) {
                let names: Vec<&str> = config.notify.iter().map(|n| n.name.as_str()).collect();
                bail!(
                    "no [[notify]] channel named {channel:?} in {}; the channels are: {}",
                    config.origin,
                    names.join(", ")
                );
            }
            let mut store = open_store(&config)?;
            if !store.requeue_delivery(id, &channel)? {
                bail!("no digest with id {id}; `storywatch digest list` shows the ids");
            }
            let store = Arc::new(Mutex::new(store));
            runtime()?.block_on(pipeline::deliver_one(&config, &store, id, &channel))?;
            let state = store
                .lock()
                .map_err(|_| anyhow::anyhow!("database lock poisoned"))?
                .deliveries(id)?
                .into_iter()
                .find(|v| v.channel == channel);
            match state {
                Some(v) if v.state == "delivered" => {
                    writeln!(out, "digest {id} delivered to {channel}")?
                }
                Some(v) => bail!(
                    "digest {id} not delivered to {channel}: {}; the daemon retries it",
                    v.last_error.unwrap_or_default()
                ),
                None => bail!("digest {id} has no delivery to {channel}"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn export_atom(
    config: &Config,
    output: Option<&std::path::Path>,
    limit: usize,
) -> Result<ExitCode> {
    let store = open_store(config)?;
    let matches: Vec<MatchRow> = store
        .list_matches(&MatchFilter::default())?
        .into_iter()
        .filter(|m| m.review != Review::Irrelevant)
        .take(limit)
        .collect();
    let stories: Vec<&str> = config.stories().map(|s| s.name.as_str()).collect();
    let xml = storywatch::digest::atom::atom_feed(&stories, &matches, Timestamp::now());
    match output {
        None => std::io::stdout().lock().write_all(xml.as_bytes())?,
        Some(path) => {
            // Replaced whole (temporary file, then rename) so a feed reader never reads half.
            let temporary = path.with_extension("atom.tmp");
            std::fs::write(&temporary, &xml)
                .and_then(|_| std::fs::rename(&temporary, path))
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("{} items written to {}", matches.len(), path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn items(config: &Config, command: ItemsCommand) -> Result<ExitCode> {
    let mut store = open_store(config)?;
    let mut out = std::io::stdout().lock();
    match command {
        ItemsCommand::List {
            json,
            state,
            limit,
            story,
        } => {
            story_filter(config, story.as_deref())?;
            let rows = store.list_matches(&MatchFilter {
                review: state.map(Review::from),
                limit: Some(limit),
                story,
                ..MatchFilter::default()
            })?;
            // With several stories an item two matched is a line for each, named.
            let several = !config.other_stories.is_empty();
            for m in &rows {
                if json {
                    writeln!(out, "{}", serde_json::to_string(m)?)?;
                } else {
                    let when = m
                        .published_at
                        .unwrap_or(m.first_seen_at)
                        .strftime("%Y-%m-%d");
                    let story = if several {
                        format!("  [{}]", review::one_line(&m.story))
                    } else {
                        String::new()
                    };
                    writeln!(
                        out,
                        "{:>6}  {when}  {:<10} {:.2}  {:<10}  {}{story}",
                        m.id,
                        review::verdict_label(m.verdict),
                        m.score,
                        m.review.as_str(),
                        review::one_line(&m.title)
                    )?;
                }
            }
            if rows.is_empty() && !json {
                writeln!(
                    out,
                    "no matches yet; run `storywatch poll --once` to poll the feeds"
                )?;
            }
        }
        ItemsCommand::Show { id } => {
            let Some(m) = store.get_match(id)? else {
                bail!("no matched item with id {id}; `storywatch items list` shows the ids");
            };
            writeln!(out, "{}", review::one_line(&m.title))?;
            writeln!(
                out,
                "  outlet:    {}",
                review::one_line(m.source.as_deref().unwrap_or("-"))
            )?;
            writeln!(
                out,
                "  published: {}",
                m.published_at.map_or("-".to_string(), |t| t.to_string())
            )?;
            writeln!(
                out,
                "  link:      {}",
                review::one_line(m.link.as_deref().unwrap_or("-"))
            )?;
            writeln!(out, "  feed:      {}", m.feed_url)?;
            writeln!(
                out,
                "  verdict:   {} (score {:.3})",
                review::verdict_label(m.verdict),
                m.score
            )?;
            writeln!(out, "  follows:   {}", m.baseline.as_deref().unwrap_or("-"))?;
            writeln!(out, "  review:    {}", m.review.as_str())?;
            // The first story's match is shown in full; further stories' verdicts follow.
            let all = store.matches_of(id)?;
            if all.len() > 1 {
                writeln!(out, "  story:     {}", review::one_line(&m.story))?;
                for other in all.iter().filter(|o| o.story != m.story) {
                    writeln!(
                        out,
                        "  also:      {}: {} (score {:.3}), {}",
                        review::one_line(&other.story),
                        review::verdict_label(other.verdict),
                        other.score,
                        other.review.as_str()
                    )?;
                }
            }
            writeln!(
                out,
                "  digest:    {}",
                m.digest_id
                    .map_or("not yet sent".to_string(), |d| d.to_string())
            )?;
            for why in &m.why {
                writeln!(out, "  why:       {}", review::one_line(why))?;
            }
            // Its near-duplicate group, earliest report first.
            let group = store.group_of(id)?;
            if group.len() > 1 {
                for member in &group {
                    let marker = if member.id == id { "*" } else { " " };
                    writeln!(
                        out,
                        "  group:    {marker}#{} {} · {} · {}",
                        member.id,
                        review::one_line(member.source.as_deref().unwrap_or("-")),
                        member.time,
                        review::one_line(&member.title)
                    )?;
                }
            }
            if !m.summary.is_empty() {
                writeln!(out, "\n{}", review::one_line(&m.summary))?;
            }
        }
        ItemsCommand::Mark { id, state, story } => {
            let marked = match &story {
                Some(name) => store.mark_for_story(id, name, state.into(), Timestamp::now())?,
                None => store.mark(id, state.into(), Timestamp::now())?,
            };
            if !marked {
                let in_story = story.map_or(String::new(), |s| format!(" in story {s:?}"));
                bail!(
                    "no matched item with id {id}{in_story}; `storywatch items list` shows the \
                     ids and their stories"
                );
            }
            writeln!(out, "item {id} marked {}", Review::from(state).as_str())?;
        }
        ItemsCommand::Search {
            query,
            json,
            limit,
            story,
        } => {
            let query = query.join(" ");
            if fts_query(&query).is_none() {
                bail!(
                    "give some words to search for, e.g. `storywatch items search fentanyl tariff`"
                );
            }
            story_filter(config, story.as_deref())?;
            let hits = store.search_items(
                &query,
                &MatchFilter {
                    limit: Some(limit),
                    story,
                    ..MatchFilter::default()
                },
            )?;
            let several = !config.other_stories.is_empty();
            review::write_search(&mut out, &hits, json, several)?;
        }
        ItemsCommand::Export {
            format,
            state,
            story,
        } => {
            story_filter(config, story.as_deref())?;
            let rows = store.list_matches(&MatchFilter {
                review: state.map(Review::from),
                story,
                ..MatchFilter::default()
            })?;
            let format = match format {
                ExportArg::Json => review::ExportFormat::Json,
                ExportArg::Csv => review::ExportFormat::Csv,
            };
            review::export(&mut out, &rows, format)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn feeds_list(config: &Config, json: bool) -> Result<ExitCode> {
    let mut store = open_store(config)?;
    store.sync_feeds(&config.feeds)?;
    let mut out = std::io::stdout().lock();
    for feed in store.feed_statuses()? {
        if json {
            writeln!(out, "{}", serde_json::to_string(&feed)?)?;
            continue;
        }
        let state = match (&feed.last_error_kind, feed.last_success_at) {
            _ if feed.disabled_reason.is_some() => format!(
                "DISABLED: {}",
                feed.disabled_reason.as_deref().unwrap_or_default()
            ),
            (Some(kind), _) => format!(
                "FAILING ({kind}, {} in a row): {}",
                feed.consecutive_failures,
                feed.last_error.as_deref().unwrap_or("")
            ),
            (None, Some(_)) => "ok".to_string(),
            (None, None) => "never polled".to_string(),
        };
        let when = |t: Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
        writeln!(out, "{}", feed.title.as_deref().unwrap_or(&feed.config_url))?;
        writeln!(out, "  {}", feed.config_url)?;
        if feed.url != feed.config_url {
            writeln!(
                out,
                "  moved permanently to {} (polled there; update the config to match)",
                feed.url
            )?;
        }
        writeln!(out, "  {state}; {} items stored", feed.items)?;
        let mut health = Vec::new();
        if let Some(at) = feed.last_success_at {
            health.push(format!("last success {}", when(at)));
        }
        if let (Some(kind), Some(at)) = (&feed.last_error_kind, feed.last_attempt_at) {
            health.push(format!("last error {kind} at {}", when(at)));
        }
        if feed.disabled_reason.is_none() {
            if let Some(next) = feed.next_poll_at.filter(|t| t.as_second() > 0) {
                health.push(format!("next poll {}", when(next)));
            } else {
                health.push("next poll now".to_string());
            }
        }
        if let Some(secs) = feed.interval_secs {
            health.push(format!(
                "every {}",
                storywatch::duration::format_duration(std::time::Duration::from_secs(secs))
            ));
        }
        writeln!(out, "  {}", health.join("; "))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The config file feed management edits: `--config`, else a discovered one. The bundled
/// default lives inside the binary and cannot be edited.
fn config_file(path: Option<&PathBuf>) -> Result<PathBuf> {
    path.cloned().or_else(Config::discover).ok_or_else(|| {
        anyhow::anyhow!(
            "storywatch is running on its bundled default config, which cannot be edited; \
             pass --config FILE (or set STORYWATCH_CONFIG), or create a config with \
             `storywatch service install --user`"
        )
    })
}

const RELOAD_HINT: &str =
    "a running daemon picks this up on reload (`systemctl reload storywatch` or SIGHUP)";

fn feeds_edit(path: PathBuf, command: FeedsCommand) -> Result<ExitCode> {
    use storywatch::feeds::manage::{ConfigEditor, NewFeed, parse_opml, validate_feed_url};
    let mut editor = ConfigEditor::open(&path)?;
    let mut out = std::io::stdout().lock();
    match command {
        FeedsCommand::Add {
            url,
            interval,
            title,
        } => {
            editor.add(&NewFeed {
                url: url.clone(),
                interval,
                title,
            })?;
            editor.save()?;
            writeln!(
                out,
                "added {} to {}; {RELOAD_HINT}",
                url.trim(),
                path.display()
            )?;
        }
        FeedsCommand::Remove { url } => {
            editor.remove(&url)?;
            editor.save()?;
            writeln!(
                out,
                "removed {} from {} (its stored items stay); {RELOAD_HINT}",
                url.trim(),
                path.display()
            )?;
        }
        FeedsCommand::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read OPML file {}", file.display()))?;
            let found = parse_opml(&text).with_context(|| format!("in {}", file.display()))?;
            let (mut added, mut duplicates, mut invalid) = (Vec::new(), Vec::new(), Vec::new());
            for feed in found {
                match validate_feed_url(&feed.url) {
                    Err(_) => invalid.push(feed.url),
                    Ok(url) if editor.contains(&url)? => duplicates.push(url),
                    Ok(url) => {
                        editor.add(&NewFeed {
                            url: url.clone(),
                            interval: None,
                            title: feed.title,
                        })?;
                        added.push(url);
                    }
                }
            }
            if !added.is_empty() {
                editor.save()?;
            }
            for url in &added {
                writeln!(out, "added      {url}")?;
            }
            for url in &duplicates {
                writeln!(out, "duplicate  {url} (already listed, skipped)")?;
            }
            for url in &invalid {
                writeln!(
                    out,
                    "invalid    {url} (not an absolute http(s) URL, skipped)"
                )?;
            }
            writeln!(
                out,
                "imported {} feeds into {}: {} duplicates and {} invalid skipped{}",
                added.len(),
                path.display(),
                duplicates.len(),
                invalid.len(),
                if added.is_empty() {
                    String::new()
                } else {
                    format!("; {RELOAD_HINT}")
                }
            )?;
        }
        FeedsCommand::List { .. } | FeedsCommand::Enable { .. } | FeedsCommand::Export => {
            bail!("internal error: {command:?} does not edit the config")
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn feeds_export(config: &Config) -> Result<ExitCode> {
    // Titles: the config's own, else the feed's title once polled (without creating a database
    // just to export).
    let stored: std::collections::HashMap<String, String> =
        if let Some(store) = open_store_to_read(config)? {
            store
                .feed_statuses()?
                .into_iter()
                .filter_map(|s| s.title.map(|t| (s.config_url, t)))
                .collect()
        } else {
            Default::default()
        };
    let feeds: Vec<(String, Option<String>)> = config
        .feeds
        .iter()
        .map(|f| {
            let title = f.title.clone().or_else(|| stored.get(&f.url).cloned());
            (f.url.clone(), title)
        })
        .collect();
    print!(
        "{}",
        storywatch::feeds::manage::export_opml(&feeds, Timestamp::now())
    );
    Ok(ExitCode::SUCCESS)
}

fn feeds_enable(config: &Config, url: &str) -> Result<ExitCode> {
    let mut store = open_store(config)?;
    store.sync_feeds(&config.feeds)?;
    if !store.enable_feed(url.trim())? {
        bail!("no configured feed has the URL {url}; `storywatch feeds list` shows them");
    }
    println!("enabled {url}; it is polled on the next poll (a running daemon within a minute)");
    Ok(ExitCode::SUCCESS)
}

fn check(config: &Config) -> Result<ExitCode> {
    let stories = Stories::load(config)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "config:   {} — ok", config.origin)?;
    writeln!(out, "database: {}", config.storage.database.display())?;
    writeln!(out, "feeds:    {}", config.feeds.len())?;
    let when = match config.digest.every {
        Some(every) => format!("every {}", storywatch::duration::format_duration(every)),
        None => format!(
            "daily at {} {}",
            config.digest.at.strftime("%H:%M"),
            config.digest.timezone_name
        ),
    };
    writeln!(
        out,
        "digest:   {when}, to {} channel(s):",
        config.notify.len()
    )?;
    if config.notify.is_empty() {
        writeln!(
            out,
            "  WARNING: no [[notify]] channel; digests are not built (matches wait) until you add \
             one, e.g. [[notify]] kind = \"file\" path = \"digests\""
        )?;
    }
    let mut unreadable = Vec::new();
    for n in &config.notify {
        let secret = match storywatch::digest::notify::check_secret(n) {
            Ok(()) => String::new(),
            Err(err) => {
                unreadable.push(n.name.clone());
                format!("\n            PROBLEM: {err}")
            }
        };
        writeln!(
            out,
            "  {:<10}{}{secret}",
            n.name,
            storywatch::digest::notify::describe(n)
        )?;
    }
    if !unreadable.is_empty() {
        bail!(
            "the secret of channel(s) {} cannot be read (see above); deliveries to them would fail",
            unreadable.join(", ")
        );
    }
    // `check` only looks: what review taught is read when there is a database, and nothing
    // in it is created, migrated or written.
    let store = open_store_to_read(config)?;
    for story in stories.iter() {
        writeln!(
            out,
            "story:    {} ({} baseline articles)",
            story.name,
            story.profile.baselines.len()
        )?;
        for b in &story.profile.baselines {
            let date = b
                .published
                .map_or("????-??-??".to_string(), |d| d.to_string());
            writeln!(
                out,
                "  {}  {date}  {:<12} {}",
                b.id,
                b.outlet.as_deref().unwrap_or("-"),
                b.title
            )?;
        }
        writeln!(out, "{}", story.profile.summary())?;
        writeln!(out, "{}", learning_line(store.as_ref(), story)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What review taught the story, for `check`, from the database when there is one.
fn learning_line(store: Option<&Store>, story: &Story) -> Result<String> {
    let Some(store) = store else {
        return Ok("review:   no database yet, nothing learned".to_string());
    };
    story.learn_from(store)?;
    let background = match story.stream_documents() {
        0 => "background: shipped English word frequencies only (no stream items counted yet)"
            .to_string(),
        n => format!(
            "background: shipped English word frequencies + {n} stream items no story matched \
             (they weigh the centroid; facets keep the shipped rarity)"
        ),
    };
    let review = match story.adjustment().describe() {
        Some(line) => format!("review:   {line}"),
        None => "review:   no items marked yet; the profile is the seeds' alone".to_string(),
    };
    Ok(format!("{background}\n{review}"))
}

fn status(config: &Config) -> Result<ExitCode> {
    // A look, not a run: read-only, so `status` never creates, migrates or syncs the database
    // the daemon owns. Feeds the config lists that the database does not know yet are simply
    // "never polled".
    let store = Store::open_read_only(&config.storage.database)?;
    let known = store.feed_statuses()?;
    let feeds: Vec<_> = known
        .iter()
        .filter(|f| config.feeds.iter().any(|c| c.url == f.config_url))
        .collect();
    let unknown = config.feeds.len().saturating_sub(feeds.len());
    let disabled: Vec<_> = feeds
        .iter()
        .filter(|f| f.disabled_reason.is_some())
        .collect();
    let failing: Vec<_> = feeds
        .iter()
        .filter(|f| f.consecutive_failures > 0 && f.disabled_reason.is_none())
        .collect();
    let never = unknown + feeds.iter().filter(|f| f.last_attempt_at.is_none()).count();
    let waiting = store.digest_input(Timestamp::now())?.matches.len();
    let last = store.last_digest()?;
    let now = Timestamp::now();
    let next = daemon::next_digest_due(config, store.last_digest_run()?, now);
    let pending = store.pending_deliveries(Timestamp::MAX)?.len();
    let running = InstanceLock::is_held(&config.storage.database);
    let size: u64 = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut path = config.storage.database.clone().into_os_string();
            path.push(suffix);
            std::fs::metadata(path).ok().map(|m| m.len())
        })
        .sum();
    let zone = &config.digest.timezone;
    let local = |t: Timestamp| {
        t.to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M %Z")
            .to_string()
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "daemon:      {}",
        if running {
            "running (database lock held)"
        } else {
            "not running"
        }
    )?;
    writeln!(
        out,
        "feeds:       {} configured, {} healthy, {} failing, {} disabled, {} never polled",
        config.feeds.len(),
        config
            .feeds
            .len()
            .saturating_sub(failing.len() + disabled.len() + never),
        failing.len(),
        disabled.len(),
        never
    )?;
    for f in &disabled {
        writeln!(
            out,
            "  disabled:  {} ({})",
            f.url,
            f.disabled_reason.as_deref().unwrap_or("")
        )?;
    }
    for f in &failing {
        writeln!(
            out,
            "  failing:   {} ({}, {} in a row)",
            f.url,
            f.last_error_kind.as_deref().unwrap_or("?"),
            f.consecutive_failures
        )?;
    }
    writeln!(
        out,
        "last digest: {}",
        last.as_ref().map_or("none yet".to_string(), |d| format!(
            "#{} at {}, {} matches",
            d.id,
            local(d.created_at),
            d.match_count
        ))
    )?;
    writeln!(
        out,
        "next digest: {}{}",
        local(next),
        if next <= now {
            " (overdue: sent when the daemon runs)"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "waiting:     {waiting} matches for the next digest; {pending} deliveries pending"
    )?;
    writeln!(
        out,
        "database:    {} ({:.1} MiB)",
        config.storage.database.display(),
        size as f64 / (1024.0 * 1024.0)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// What a reload (SIGHUP) reads again: the config at `path` and its stories.
fn loader(path: Option<PathBuf>) -> daemon::Loader {
    Box::new(move || {
        let config = load_config(path.as_ref())?;
        let stories = Stories::load(&config)?;
        Ok((config, stories))
    })
}

/// `serve`: the review page alone, until Ctrl-C or SIGTERM; SIGHUP shows the stories of the
/// config as it is now. It opens the database beside a running daemon (SQLite's WAL lets both
/// use it), so it takes no instance lock.
fn serve(config: Config, reload_with: daemon::Loader) -> Result<ExitCode> {
    let Some(web_config) = config.web.clone() else {
        bail!(
            "{}: no [web] section; add one with listen = \"127.0.0.1:8470\" to serve the review page",
            config.origin
        );
    };
    let stories = Stories::load(&config)?;
    let store = Arc::new(Mutex::new(open_store(&config)?));
    runtime()?.block_on(async {
        let listener = web::bind(web_config.listen).await?;
        let listen = listener.local_addr()?;
        let views = web::StoryViews::of(&stories);
        let state = web::WebState::new(
            store,
            views.clone(),
            web::WebOptions {
                listen,
                token: web_config.token.clone(),
                timezone: config.digest.timezone.clone(),
                readiness: web::Readiness::DatabaseOnly,
            },
        )?;
        let (stop, shutdown) = Shutdown::new();
        let (reload_tx, mut reload) = tokio::sync::watch::channel(0u64);
        tokio::spawn(handle_signals(stop, reload_tx));
        tokio::spawn(async move {
            while reload.changed().await.is_ok() {
                match reload_with() {
                    Ok((_, stories)) => {
                        views.replace(&stories);
                        tracing::info!("stories reloaded");
                    }
                    Err(err) => tracing::error!(
                        error = %format!("{err:#}"),
                        "reload rejected; keeping the stories shown"
                    ),
                }
            }
        });
        // Tests and scripts read the address (the port may have been chosen by the system).
        println!("review page: http://{listen}/");
        std::io::stdout().flush()?;
        web::serve(listener, state, shutdown).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `review`: unreviewed matches one at a time; decisions are lines on stdin.
fn review(config: &Config, story: Option<&str>) -> Result<ExitCode> {
    use std::io::IsTerminal;
    story_filter(config, story)?;
    let mut store = open_store(config)?;
    let interactive = std::io::stdin().is_terminal();
    let mut input = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    review::interactive(&mut store, story, &mut input, &mut out, |link| {
        // Only a person at a terminal wants a browser window; piped input just gets the link.
        if interactive {
            let _ = std::process::Command::new("xdg-open")
                .arg(link)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn();
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// `rescore`: the current profile over every stored item.
fn rescore(config: &Config, dry_run: bool) -> Result<ExitCode> {
    let stories = Stories::load(config)?;
    let mut store = open_store(config)?;
    let several = stories.names().len() > 1;
    let mut out = std::io::stdout().lock();
    for story in stories.iter() {
        // Rescoring tests the profile the daemon would use: seeds plus what review taught.
        story.learn_from(&store)?;
        let report = store.rescore(
            &story.name,
            |item, seen| story.classify(item, seen),
            |item| stories.signature(item),
            !dry_run,
            Timestamp::now(),
        )?;
        if several {
            writeln!(out, "story {}:", story.name)?;
        }
        review::write_rescore(&mut out, &report, !dry_run)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn eval(config: &Config, labels: &std::path::Path, errors: bool) -> Result<ExitCode> {
    use storywatch::story::eval::{evaluate, read_labels};
    let story = Story::load(&config.story)?;
    let text = std::fs::read_to_string(labels)
        .with_context(|| format!("cannot read labels file {}", labels.display()))?;
    let items = read_labels(&text).with_context(|| format!("in {}", labels.display()))?;
    let report = evaluate(&story.profile, &items);
    write!(std::io::stdout().lock(), "{}", report.render(errors))?;
    Ok(ExitCode::SUCCESS)
}

fn service_install(user: bool, root: &std::path::Path) -> Result<ExitCode> {
    use storywatch::install::{Scope, install};
    let scope = if user { Scope::User } else { Scope::System };
    let executable =
        std::env::current_exe().context("finding this program's path for ExecStart")?;
    let config_home = storywatch::config::user_config_home();
    let data_home = storywatch::config::user_data_home();
    let done = install(
        scope,
        root,
        &executable,
        config_home.as_deref(),
        data_home.as_deref(),
    )?;
    let mut out = std::io::stdout().lock();
    for file in &done {
        let what = if file.written { "wrote" } else { "kept " };
        writeln!(out, "{what} {}", file.path.display())?;
    }
    let systemctl = if user {
        "systemctl --user"
    } else {
        "systemctl"
    };
    writeln!(
        out,
        "\nNext: edit the config, then\n  {systemctl} daemon-reload\n  {systemctl} enable --now storywatch"
    )?;
    let journal = if user {
        "journalctl --user -u storywatch -f"
    } else {
        "journalctl -u storywatch -f"
    };
    writeln!(out, "Logs: {journal}")?;
    Ok(ExitCode::SUCCESS)
}
