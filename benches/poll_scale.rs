//! Scale benchmark: 1,000 feeds of 50 items each, polled twice (all new, then all 304), with the
//! same feeds fetched by Python's `feedparser` in the same run for comparison.
//!
//! Run: `cargo bench --bench poll_scale` (release profile). Environment:
//! - `STORYWATCH_BENCH_FEEDS` (default 1000), `STORYWATCH_BENCH_ITEMS` (default 50);
//! - `STORYWATCH_BENCH_CONCURRENCY` (default 32) for both storywatch and the peer's thread pool;
//! - `STORYWATCH_BENCH_PEER_VENV` (default `target/poll_scale-peer-venv` under
//!   `CARGO_TARGET_DIR` or the package's `target/`): the virtualenv the peer runs in. On the
//!   first run it is created with `python3 -m venv` and `feedparser` [`PEER_VERSION`] is
//!   installed into it from PyPI with its `pip`; later runs reuse it.
//!
//! The peer is not optional: without it the figures have nothing to be compared with, so when
//! it cannot be installed or run, or its results do not match the feeds served, the benchmark
//! fails (exit 1) with the reason instead of printing a half table.
//!
//! The feed server runs in a child process (this program re-executed with `--serve`), so the
//! peak RSS read from `/proc/self/status` (VmHWM) is storywatch's own: config, story profile,
//! HTTP client, parser, matcher and SQLite. Feeds are spread over 100 loopback addresses
//! (127.0.0.2–127.0.0.101) so the default per-host limit of 2 applies as it would to 100
//! publishers. Bodies are generated on the fly; ETag gives the conditional GET.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use storywatch::config::Config;
use storywatch::pipeline::{self, FeedOutcome, PollContext, Stories};
use storywatch::store::Store;

const HOSTS: usize = 100;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--serve") {
        let items = args.get(at + 1).and_then(|n| n.parse().ok()).unwrap_or(50);
        serve(items);
        return;
    }
    if let Err(err) = bench() {
        eprintln!("benchmark failed: {err:#}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// The feed server (child process).

const WORDS: &[&str] = &[
    "council", "budget", "rail", "harbour", "election", "weather", "market", "museum", "school",
    "football", "bridge", "festival", "housing", "energy", "court", "hospital", "airport", "river",
];

const ON_TOPIC: &[&str] = &[
    "China tightens controls on fentanyl precursor chemicals after talks with US",
    "US and China counternarcotics working group meets on fentanyl flows",
    "Justice Department charges Chinese firms over fentanyl precursor sales",
];

fn feed_body(feed: usize, items: usize) -> String {
    let mut body = String::with_capacity(items * 420 + 300);
    body.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\"><channel>\
         <title>Bench feed {feed}</title><link>https://feed{feed}.example/</link>\
         <description>Generated</description>\n"
    ));
    // Fixed dates (a 2026 hour per item) keep the bodies identical between runs.
    let base = 1_780_000_000i64 - (feed as i64) * 7;
    for n in 0..items {
        let title = if (feed + n).is_multiple_of(25) {
            ON_TOPIC[(feed + n) % ON_TOPIC.len()].to_string()
        } else {
            format!(
                "{} {} report {feed}-{n}: {} plans announced",
                WORDS[(feed + n) % WORDS.len()],
                WORDS[(feed * 7 + n * 3) % WORDS.len()],
                WORDS[(feed * 3 + n) % WORDS.len()]
            )
        };
        let date = jiff::Timestamp::from_second(base - (n as i64) * 3600)
            .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
            .strftime("%a, %d %b %Y %H:%M:%S +0000");
        body.push_str(&format!(
            "<item><title>{title}</title><link>https://feed{feed}.example/a/{n}</link>\
             <guid isPermaLink=\"false\">f{feed}-i{n}</guid><pubDate>{date}</pubDate>\
             <description>&lt;p&gt;Local officials said on Tuesday that the {} and the {} \
             would be reviewed next month, with &lt;b&gt;details&lt;/b&gt; to follow.&lt;/p&gt;\
             </description></item>\n",
            WORDS[(feed + 2 * n) % WORDS.len()],
            WORDS[(feed + 5 * n) % WORDS.len()]
        ));
    }
    body.push_str("</channel></rss>\n");
    body
}

fn serve(items: usize) {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(err) => {
            eprintln!("server runtime: {err}");
            return;
        }
    };
    runtime.block_on(async move {
        // One port on every host address; retry with another port if one is taken.
        let mut listeners = Vec::new();
        'ports: for _ in 0..20 {
            listeners.clear();
            let Ok(first) = tokio::net::TcpListener::bind("127.0.0.2:0").await else {
                continue;
            };
            let Ok(port) = first.local_addr().map(|a| a.port()) else {
                continue;
            };
            listeners.push(first);
            for host in 3..(2 + HOSTS) {
                match tokio::net::TcpListener::bind(format!("127.0.0.{host}:{port}")).await {
                    Ok(l) => listeners.push(l),
                    Err(_) => continue 'ports,
                }
            }
            println!("{port}");
            let _ = std::io::stdout().flush();
            break;
        }
        let mut tasks = Vec::new();
        for listener in listeners {
            tasks.push(tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(connection(stream, items));
                }
            }));
        }
        // Stop when the parent closes our stdin.
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = String::new();
            let _ = std::io::stdin().read_line(&mut sink);
        })
        .await;
    });
}

async fn connection(stream: tokio::net::TcpStream, items: usize) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let (read, mut write) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut if_none_match = None;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("if-none-match")
            {
                if_none_match = Some(value.trim().to_string());
            }
        }
        let feed: Option<usize> = path.strip_prefix("/feed/").and_then(|n| n.parse().ok());
        let response = match feed {
            None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
            Some(feed) => {
                let etag = format!("\"v{feed}\"");
                if if_none_match.as_deref() == Some(etag.as_str()) {
                    format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\n\r\n").into_bytes()
                } else {
                    let body = feed_body(feed, items);
                    let mut r = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml; charset=utf-8\r\n\
                         ETag: {etag}\r\nContent-Length: {}\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(body.as_bytes());
                    r
                }
            }
        };
        if write.write_all(&response).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The measurement.

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        // Closing stdin stops it; kill is the fallback.
        drop(self.child.stdin.take());
        std::thread::sleep(Duration::from_millis(100));
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(items: usize) -> anyhow::Result<Server> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["--serve", &items.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no server stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let port = line
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("server did not report a port: {line:?}"))?;
    Ok(Server { child, port })
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn write_config(dir: &Path, urls: &[String], concurrency: usize) -> anyhow::Result<PathBuf> {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut text = format!(
        "[storage]\ndatabase = \"bench.db\"\n\n[story]\nname = \"bench\"\nseeds = {:?}\n\n\
         [fetch]\ntimeout = \"30s\"\nallow_private_networks = true\nconcurrency = {concurrency}\n\
         per_host = 2\nbacklog_max_age = \"off\"\n\n",
        seeds.display().to_string()
    );
    for url in urls {
        text.push_str(&format!("[[feeds]]\nurl = {url:?}\n"));
    }
    let path = dir.join("storywatch.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

struct Poll {
    seconds: f64,
    fetched: usize,
    not_modified: usize,
    failed: usize,
    new_items: usize,
    new_matches: usize,
}

fn poll(
    ctx: &PollContext,
    config: &Config,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<Poll> {
    let rows = ctx
        .store
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .active_feeds()?;
    let feeds = pipeline::with_intervals(rows, &config.feeds);
    let started = Instant::now();
    let reports = runtime.block_on(pipeline::poll_feeds(ctx, feeds, config.fetch.concurrency))?;
    let seconds = started.elapsed().as_secs_f64();
    let mut result = Poll {
        seconds,
        fetched: 0,
        not_modified: 0,
        failed: 0,
        new_items: 0,
        new_matches: 0,
    };
    for report in reports {
        match report.outcome {
            FeedOutcome::Fetched {
                new_items,
                new_matches,
                ..
            } => {
                result.fetched += 1;
                result.new_items += new_items;
                result.new_matches += new_matches;
            }
            FeedOutcome::NotModified => result.not_modified += 1,
            FeedOutcome::Failed { kind, message } => {
                if result.failed < 3 {
                    eprintln!("  failed: {kind}: {message}");
                }
                result.failed += 1;
            }
        }
    }
    Ok(result)
}

const PEER: &str = r#"
import concurrent.futures as cf, json, sys, time
import feedparser
urls = open(sys.argv[1]).read().split()
def vm_hwm_kib():
    # Not getrusage's ru_maxrss: Linux carries the parent's peak across fork and exec, so the
    # child would report the benchmark's own peak. VmHWM belongs to this process's memory.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
workers = int(sys.argv[2])
def get(url, etag=None):
    d = feedparser.parse(url, etag=etag, agent="feedparser-bench")
    return d.get("status"), len(d.entries), d.get("etag")
t = time.perf_counter()
with cf.ThreadPoolExecutor(workers) as ex:
    first = list(ex.map(get, urls))
t1 = time.perf_counter() - t
t = time.perf_counter()
with cf.ThreadPoolExecutor(workers) as ex:
    second = list(ex.map(get, urls, [r[2] for r in first]))
t2 = time.perf_counter() - t
print(json.dumps({
    "first_s": t1, "second_s": t2,
    "ok": sum(1 for r in first if r[0] == 200),
    "items": sum(r[1] for r in first),
    "not_modified": sum(1 for r in second if r[0] == 304),
    "peak_rss_kib": vm_hwm_kib(),
    "version": feedparser.__version__,
}))
"#;

/// The feedparser release the peer installs, pinned so that runs compare like with like.
const PEER_VERSION: &str = "6.0.14";

/// The peer's virtualenv, created and filled on first use; returns its Python.
fn peer_python() -> anyhow::Result<PathBuf> {
    use anyhow::Context;
    let venv = match std::env::var_os("STORYWATCH_BENCH_PEER_VENV") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
            .join("poll_scale-peer-venv"),
    };
    let python = venv.join("bin").join("python");
    let has_peer = |python: &Path| {
        Command::new(python)
            .args([
                "-c",
                &format!(
                    "import feedparser, sys; sys.exit(feedparser.__version__ != {PEER_VERSION:?})"
                ),
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_peer(&python) {
        return Ok(python);
    }
    eprintln!(
        "installing the peer: python3 -m venv {} && pip install feedparser=={PEER_VERSION}",
        venv.display()
    );
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("python3 -m venv (install python3 and python3-venv)")?;
    anyhow::ensure!(
        created.success(),
        "python3 -m venv {} failed (Debian: apt-get install python3-venv)",
        venv.display()
    );
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .arg(format!("feedparser=={PEER_VERSION}"))
        .status()
        .context("running the venv's pip")?;
    anyhow::ensure!(
        installed.success(),
        "pip install feedparser=={PEER_VERSION} into {} failed (is PyPI reachable?)",
        venv.display()
    );
    anyhow::ensure!(
        has_peer(&python),
        "feedparser {PEER_VERSION} is still not importable from {}",
        python.display()
    );
    Ok(python)
}

/// Runs the peer over `urls` twice (all new, then with ETags), checking that it saw what was
/// served: every feed fetched, every item parsed, every second fetch a 304. A peer that failed
/// quietly would otherwise look fast.
fn run_peer(
    dir: &Path,
    urls: &[String],
    items: usize,
    concurrency: usize,
) -> anyhow::Result<serde_json::Value> {
    let python = peer_python()?;
    let list = dir.join("urls.txt");
    std::fs::write(&list, urls.join("\n"))?;
    let script = dir.join("peer.py");
    std::fs::write(&script, PEER)?;
    let out = Command::new(&python)
        .arg(&script)
        .arg(&list)
        .arg(concurrency.to_string())
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "peer failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let count = |key: &str| result.get(key).and_then(serde_json::Value::as_u64);
    let expected = [
        ("ok", urls.len()),
        ("items", urls.len() * items),
        ("not_modified", urls.len()),
    ];
    for (key, want) in expected {
        anyhow::ensure!(
            count(key) == Some(want as u64),
            "the peer's {key} is {:?}, expected {want}: its figures would not be comparable",
            count(key)
        );
    }
    Ok(result)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn bench() -> anyhow::Result<()> {
    let feeds = env_usize("STORYWATCH_BENCH_FEEDS", 1000);
    let items = env_usize("STORYWATCH_BENCH_ITEMS", 50);
    let concurrency = env_usize("STORYWATCH_BENCH_CONCURRENCY", 32);
    let server = start_server(items)?;
    let urls: Vec<String> = (0..feeds)
        .map(|n| format!("http://127.0.0.{}:{}/feed/{n}", 2 + n % HOSTS, server.port))
        .collect();
    let dir = tempfile::tempdir()?;
    let path = write_config(dir.path(), &urls, concurrency)?;
    let rss_start = peak_rss_kib();

    let config = Config::load(&path)?;
    let stories = Arc::new(Stories::load(&config)?);
    let mut store = Store::open(&config.storage.database)?;
    store.sync_feeds(&config.feeds)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ctx = PollContext::new(
        pipeline::fetcher(&config)?,
        Arc::new(Mutex::new(store)),
        stories,
    )
    .configured(&config.fetch);

    let first = poll(&ctx, &config, &runtime)?;
    let rss_first = peak_rss_kib();
    let second = poll(&ctx, &config, &runtime)?;
    let rss_second = peak_rss_kib();
    let db_bytes = std::fs::metadata(&config.storage.database).map_or(0, |m| m.len())
        + std::fs::metadata(dir.path().join("bench.db-wal")).map_or(0, |m| m.len());

    let peer = run_peer(dir.path(), &urls, items, concurrency)?;
    drop(server);

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("## poll_scale");
    println!();
    println!(
        "{feeds} feeds × {items} items on {HOSTS} loopback hosts, concurrency {concurrency}, per_host 2; \
         {cores} cores, {}; storywatch {}",
        cpu_model(),
        env!("CARGO_PKG_VERSION")
    );
    println!();
    println!("| | storywatch | feedparser (Python) |");
    println!("|---|---|---|");
    let peer_f =
        |key: &str| -> String { peer.get(key).map_or("–".to_string(), |v| v.to_string()) };
    let peer_s = |key: &str| -> String {
        peer.get(key)
            .and_then(serde_json::Value::as_f64)
            .map_or("–".to_string(), |v| format!("{v:.2} s"))
    };
    println!(
        "| first poll (all new) | {:.2} s ({} fetched, {} failed) | {} ({} ok) |",
        first.seconds,
        first.fetched,
        first.failed,
        peer_s("first_s"),
        peer_f("ok")
    );
    println!(
        "| items | {} stored, {} matched | {} parsed, not stored |",
        first.new_items,
        first.new_matches,
        peer_f("items")
    );
    println!(
        "| items stored per second | {:.0} | – |",
        first.new_items as f64 / first.seconds
    );
    println!(
        "| second poll (all 304) | {:.2} s ({} not modified, {} failed) | {} ({} not modified) |",
        second.seconds,
        second.not_modified,
        second.failed,
        peer_s("second_s"),
        peer_f("not_modified")
    );
    println!(
        "| peak RSS | {:.1} MiB (after first poll {:.1} MiB; at start {:.1} MiB) | {} |",
        rss_second as f64 / 1024.0,
        rss_first as f64 / 1024.0,
        rss_start as f64 / 1024.0,
        peer.get("peak_rss_kib")
            .and_then(serde_json::Value::as_f64)
            .map_or("–".to_string(), |k| format!("{:.1} MiB", k / 1024.0))
    );
    println!(
        "| database after the run | {:.1} MiB | – |",
        db_bytes as f64 / (1024.0 * 1024.0)
    );
    if let Some(v) = peer.get("version") {
        println!();
        println!(
            "feedparser {v}, {concurrency} threads, same URLs, same run, ETag sent on the second pass."
        );
    }
    Ok(())
}
