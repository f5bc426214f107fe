//! A small real HTTP/1.1 server on 127.0.0.1 for end-to-end tests, and helpers to run the binary.
//!
//! Each route answers with a scripted [`Response`]; misbehaviours (slow trickle, reset, hang) are
//! part of the script so tests can exercise a fetcher against a server that fails on purpose.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How the server misbehaves (or not) when answering.
#[derive(Clone, Debug, Default)]
pub enum Behaviour {
    /// Answer normally.
    #[default]
    Normal,
    /// Send headers, then one body byte every `every`, forever (until the client leaves).
    Trickle { every: Duration },
    /// Close the connection without answering.
    Reset,
    /// Accept the request and never answer.
    Hang,
    /// Answer normally but send the body with `Transfer-Encoding: chunked` (no `Content-Length`),
    /// in chunks of at most this many bytes.
    Chunked { chunk: usize },
    /// Answer normally after waiting this long (so concurrent requests overlap).
    Delay { by: Duration },
}

/// A scripted answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub behaviour: Behaviour,
    /// When set, a request carrying `If-None-Match` equal to this gets a 304.
    pub etag: Option<String>,
}

impl Response {
    /// A 200 with the given content type and body.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.into(),
            behaviour: Behaviour::Normal,
            etag: None,
        }
    }

    /// A bare status with an empty body.
    pub fn status(status: u16) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            behaviour: Behaviour::Normal,
            etag: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Serves conditional GET with this ETag.
    pub fn with_etag(mut self, etag: &str) -> Response {
        self.etag = Some(etag.into());
        self
    }

    /// Sets the misbehaviour.
    pub fn behave(mut self, behaviour: Behaviour) -> Response {
        self.behaviour = behaviour;
        self
    }
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct SeenRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// The request body (empty for GET).
    pub body: Vec<u8>,
}

impl SeenRequest {
    /// The value of a request header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Response>,
    seen: Vec<SeenRequest>,
    /// Requests being answered right now, and the most there ever were at once.
    in_flight: usize,
    max_in_flight: usize,
}

/// The server; it runs until the test process ends.
#[derive(Clone)]
pub struct TestServer {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl TestServer {
    /// Binds 127.0.0.1 on a free port and starts serving.
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let port = listener.local_addr().expect("local addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let served = Arc::clone(&state);
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&served);
                thread::spawn(move || serve_connection(stream, &state));
            }
        });
        TestServer { port, state }
    }

    /// The absolute URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Sets (or replaces) the answer for `path`.
    pub fn route(&self, path: &str, response: Response) {
        self.state
            .lock()
            .unwrap()
            .routes
            .insert(path.to_string(), response);
    }

    /// Every request served so far, oldest first.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The most requests this server was answering at the same moment.
    pub fn max_concurrent(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }

    /// The requests for one path.
    pub fn requests_for(&self, path: &str) -> Vec<SeenRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }
}

fn serve_connection(mut stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let mut headers = Vec::new();
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim().to_string();
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.parse().unwrap_or(0);
                }
                headers.push((name.to_string(), value));
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let response = state.lock().unwrap().routes.get(&path).cloned();
        let mut response = response.unwrap_or_else(|| Response::status(404));
        let if_none_match = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("if-none-match"))
            .map(|(_, v)| v.clone());
        if let (Some(etag), Some(sent)) = (&response.etag, &if_none_match)
            && etag == sent
        {
            response = Response::status(304);
        }
        {
            let mut state = state.lock().unwrap();
            state.seen.push(SeenRequest {
                path,
                headers,
                status: response.status,
                body,
            });
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
        }
        let reusable = write_response(&mut stream, &response);
        state.lock().unwrap().in_flight -= 1;
        if !reusable {
            return;
        }
    }
}

/// Writes one response; returns whether the connection may be reused.
fn write_response(stream: &mut TcpStream, response: &Response) -> bool {
    match &response.behaviour {
        Behaviour::Reset => {
            let _ = stream.shutdown(Shutdown::Both);
            false
        }
        Behaviour::Hang => {
            thread::sleep(Duration::from_secs(120));
            false
        }
        Behaviour::Trickle { every } => {
            let head = format!(
                "HTTP/1.1 {} X\r\nContent-Type: application/rss+xml\r\nConnection: close\r\n\r\n<rss version=\"2.0\"><channel>",
                response.status
            );
            if stream.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for _ in 0..10_000 {
                thread::sleep(*every);
                if stream.write_all(b" ").and_then(|_| stream.flush()).is_err() {
                    break;
                }
            }
            false
        }
        Behaviour::Chunked { chunk } => {
            let mut head = format!("HTTP/1.1 {} X\r\n", response.status);
            for (name, value) in &response.headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("Transfer-Encoding: chunked\r\n\r\n");
            if stream.write_all(head.as_bytes()).is_err() {
                return false;
            }
            for piece in response.body.chunks((*chunk).max(1)) {
                let size = format!("{:x}\r\n", piece.len());
                if stream.write_all(size.as_bytes()).is_err()
                    || stream.write_all(piece).is_err()
                    || stream.write_all(b"\r\n").is_err()
                {
                    return false;
                }
            }
            stream.write_all(b"0\r\n\r\n").is_ok() && stream.flush().is_ok()
        }
        Behaviour::Delay { by } => {
            thread::sleep(*by);
            write_response(
                stream,
                &Response {
                    behaviour: Behaviour::Normal,
                    ..response.clone()
                },
            )
        }
        Behaviour::Normal => {
            let mut head = format!("HTTP/1.1 {} X\r\n", response.status);
            for (name, value) in &response.headers {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            if let Some(etag) = &response.etag {
                head.push_str(&format!("ETag: {etag}\r\n"));
            }
            if !response
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            {
                head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
            }
            head.push_str("\r\n");
            stream.write_all(head.as_bytes()).is_ok()
                && stream.write_all(&response.body).is_ok()
                && stream.flush().is_ok()
        }
    }
}

/// The path of a fixture file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The `wire.rss` fixture served as RSS: the feed most end-to-end tests poll.
pub fn wire_feed() -> Response {
    let body = std::fs::read(fixture("wire.rss")).unwrap_or_else(|e| panic!("wire.rss: {e}"));
    Response::ok("application/rss+xml", body)
}

/// The bundled seed folder.
pub fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

/// The storywatch binary, run in `dir` with an environment of its own: none of the developer's
/// or the service manager's settings (`STORYWATCH_CONFIG`, systemd's directories, XDG paths, a
/// `~/.config/storywatch` from `service install --user`) can change what a test sees.
pub fn binary(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_storywatch"));
    command.current_dir(dir).env("HOME", dir);
    for var in [
        "STORYWATCH_CONFIG",
        "CONFIGURATION_DIRECTORY",
        "STATE_DIRECTORY",
        "CREDENTIALS_DIRECTORY",
        "LOGS_DIRECTORY",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_STATE_HOME",
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "JOURNAL_STREAM",
    ] {
        command.env_remove(var);
    }
    command
}

/// Runs the real `storywatch` binary with `args` in `dir`, optionally feeding `stdin`.
pub fn storywatch(dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    use std::process::Stdio;
    let mut child = binary(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn storywatch");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    child.wait_with_output().expect("wait storywatch")
}

/// Writes a config for tests into `dir`: the given feed URLs, the bundled seeds, private
/// networks allowed (the server is on 127.0.0.1), a file channel to `dir/digests`, and `extra`
/// TOML appended verbatim. The fixtures' items are dated years ago, so the first-poll backlog
/// rule is off here (`backlog_max_age = "off"`): every item is new, as tests expect; the
/// backlog tests set it themselves.
pub fn write_config(dir: &Path, feeds: &[String], extra: &str) -> PathBuf {
    let mut text = format!(
        "[storage]\ndatabase = \"storywatch.db\"\n\n[story]\nname = \"US–China fentanyl cooperation\"\nseeds = {:?}\n\n\
         [fetch]\ntimeout = \"5s\"\nconnect_timeout = \"2s\"\nallow_private_networks = true\nbacklog_max_age = \"off\"\n\n\
         [digest]\nat = \"07:00\"\ntimezone = \"Europe/London\"\n\n[[notify]]\nkind = \"file\"\npath = \"digests\"\n\n",
        seeds_dir().display().to_string()
    );
    for url in feeds {
        text.push_str(&format!("[[feeds]]\nurl = {url:?}\ninterval = \"30m\"\n\n"));
    }
    text.push_str(extra);
    let path = dir.join("storywatch.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

/// Stdout of a finished command as text, failing the test with stderr when it did not succeed.
pub fn success(output: &Output) -> String {
    assert!(
        output.status.success(),
        "storywatch failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A `storywatch run` daemon started by a test; killed when dropped.
pub struct Daemon {
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl Daemon {
    /// Starts `storywatch --config storywatch.toml run` in `dir`, logging at info to `dir/daemon.log`.
    pub fn start(dir: &Path) -> Daemon {
        let log = dir.join(format!(
            "daemon-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let file = std::fs::File::create(&log).expect("create daemon log");
        let child = binary(dir)
            .args(["--config", "storywatch.toml", "--log-format", "text", "run"])
            .env("RUST_LOG", "storywatch=info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn storywatch run");
        Daemon { child, log }
    }

    /// Sends a signal by name (`TERM`, `HUP`, `KILL`).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 50 ms until it returns true or `limit` passes.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(50));
    }
    false
}

/// The Markdown digests the `file` channel wrote to `dir/digests`, in file-name order.
pub fn digest_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<_> = std::fs::read_dir(dir.join("digests"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "md"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}
