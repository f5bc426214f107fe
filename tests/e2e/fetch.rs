//! The fetcher against a real local HTTP server that behaves well, badly and maliciously.

use std::io::Write;
use std::time::{Duration, Instant};

use storywatch::feeds::{
    CacheHints, FetchError, FetchOutcome, FetchSettings, Fetcher, Validators, parse_feed,
};

use crate::support::{Behaviour, Response, TestServer};

const RSS: &str = "application/rss+xml; charset=utf-8";

fn settings(allow_private_networks: bool) -> FetchSettings {
    FetchSettings {
        timeout: Duration::from_secs(2),
        connect_timeout: Duration::from_secs(1),
        max_body_bytes: 64 * 1024,
        allow_private_networks,
        user_agent: "storywatch-test/1.0".into(),
    }
}

fn fetcher() -> Fetcher {
    Fetcher::new(settings(true)).unwrap()
}

async fn fetch_err(fetcher: &Fetcher, url: &str) -> FetchError {
    match fetcher.fetch(url, &Validators::default()).await {
        Ok(outcome) => panic!("expected an error for {url}, got {outcome:?}"),
        Err(e) => e,
    }
}

fn feed_body() -> Vec<u8> {
    std::fs::read(crate::support::fixture("rss2_basic.xml")).unwrap()
}

#[tokio::test]
async fn ok_returns_body_validators_and_sends_user_agent() {
    let server = TestServer::start();
    server.route(
        "/feed",
        Response::ok(RSS, feed_body())
            .header("Last-Modified", "Tue, 12 Mar 2024 10:00:00 GMT")
            .with_etag("\"v1\""),
    );
    let outcome = fetcher()
        .fetch(&server.url("/feed"), &Validators::default())
        .await
        .unwrap();
    let FetchOutcome::Fetched {
        body,
        content_type,
        validators,
        final_url,
        moved_permanently_to,
        cache,
    } = outcome
    else {
        panic!("expected a body");
    };
    assert_eq!(cache, CacheHints::default());
    assert_eq!(body, feed_body());
    assert_eq!(content_type.as_deref(), Some(RSS));
    assert_eq!(validators.etag.as_deref(), Some("\"v1\""));
    assert_eq!(
        validators.last_modified.as_deref(),
        Some("Tue, 12 Mar 2024 10:00:00 GMT")
    );
    assert_eq!(final_url, server.url("/feed"));
    assert_eq!(moved_permanently_to, None);
    let seen = server.requests_for("/feed");
    assert_eq!(seen[0].header("user-agent"), Some("storywatch-test/1.0"));
    assert!(
        seen[0]
            .header("accept")
            .unwrap()
            .contains("application/rss+xml")
    );
    // And what came back is a feed the parser reads.
    let feed = parse_feed(&body, content_type.as_deref(), &final_url).unwrap();
    assert_eq!(feed.items.len(), 2);
}

#[tokio::test]
async fn conditional_get_gives_not_modified() {
    let server = TestServer::start();
    server.route("/feed", Response::ok(RSS, feed_body()).with_etag("\"v1\""));
    let validators = Validators {
        etag: Some("\"v1\"".into()),
        last_modified: Some("Tue, 12 Mar 2024 10:00:00 GMT".into()),
    };
    let outcome = fetcher()
        .fetch(&server.url("/feed"), &validators)
        .await
        .unwrap();
    assert!(
        matches!(outcome, FetchOutcome::NotModified { .. }),
        "{outcome:?}"
    );
    let seen = &server.requests_for("/feed")[0];
    assert_eq!(seen.header("if-none-match"), Some("\"v1\""));
    assert_eq!(
        seen.header("if-modified-since"),
        Some("Tue, 12 Mar 2024 10:00:00 GMT")
    );
    assert_eq!(seen.status, 304);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn gzip_body_is_decoded() {
    let server = TestServer::start();
    server.route(
        "/feed",
        Response::ok(RSS, gzip(&feed_body())).header("Content-Encoding", "gzip"),
    );
    let outcome = fetcher()
        .fetch(&server.url("/feed"), &Validators::default())
        .await
        .unwrap();
    let FetchOutcome::Fetched { body, .. } = outcome else {
        panic!("expected a body");
    };
    assert_eq!(body, feed_body());
    let seen = &server.requests_for("/feed")[0];
    assert!(
        seen.header("accept-encoding")
            .unwrap_or("")
            .contains("gzip")
    );
}

/// Zlib-wrapped DEFLATE, what `Content-Encoding: deflate` means (RFC 9110 §8.4.1.2).
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
        writer.write_all(data).unwrap();
    }
    out
}

#[tokio::test]
async fn brotli_and_deflate_bodies_are_decoded() {
    let server = TestServer::start();
    server.route(
        "/br",
        Response::ok(RSS, brotli(&feed_body())).header("Content-Encoding", "br"),
    );
    server.route(
        "/deflate",
        Response::ok(RSS, deflate(&feed_body())).header("Content-Encoding", "deflate"),
    );
    for path in ["/br", "/deflate"] {
        let outcome = fetcher()
            .fetch(&server.url(path), &Validators::default())
            .await
            .unwrap();
        let FetchOutcome::Fetched { body, .. } = outcome else {
            panic!("expected a body from {path}");
        };
        assert_eq!(body, feed_body(), "{path}");
    }
    let accepted = server.requests_for("/br")[0]
        .header("accept-encoding")
        .unwrap_or("")
        .to_string();
    assert!(
        accepted.contains("br") && accepted.contains("deflate"),
        "{accepted}"
    );
}

#[tokio::test]
async fn body_over_the_cap_is_refused_with_and_without_content_length() {
    let server = TestServer::start();
    let big = vec![b'x'; 100 * 1024];
    server.route("/declared", Response::ok(RSS, big.clone()));
    server.route(
        "/chunked",
        Response::ok(RSS, big.clone()).behave(Behaviour::Chunked { chunk: 4096 }),
    );
    // A small compressed body that inflates past the cap: the cap applies after decoding.
    server.route(
        "/bomb",
        Response::ok(RSS, gzip(&vec![0u8; 1024 * 1024])).header("Content-Encoding", "gzip"),
    );
    let fetcher = fetcher();
    for path in ["/declared", "/chunked", "/bomb"] {
        let err = fetch_err(&fetcher, &server.url(path)).await;
        assert_eq!(err.kind(), "too_large", "{path}: {err}");
        assert!(
            err.to_string().contains("body larger than 64 KiB cap"),
            "{err}"
        );
    }
    // Under the cap, chunked bodies arrive whole.
    server.route(
        "/small",
        Response::ok(RSS, feed_body()).behave(Behaviour::Chunked { chunk: 100 }),
    );
    let outcome = fetcher
        .fetch(&server.url("/small"), &Validators::default())
        .await
        .unwrap();
    assert!(matches!(outcome, FetchOutcome::Fetched { body, .. } if body == feed_body()));
}

#[tokio::test]
async fn trickling_server_hits_the_total_timeout() {
    let server = TestServer::start();
    server.route(
        "/slow",
        Response::status(200).behave(Behaviour::Trickle {
            every: Duration::from_millis(100),
        }),
    );
    let fetcher = Fetcher::new(FetchSettings {
        timeout: Duration::from_secs(1),
        ..settings(true)
    })
    .unwrap();
    let started = Instant::now();
    let err = fetch_err(&fetcher, &server.url("/slow")).await;
    assert_eq!(err.kind(), "timeout", "{err}");
    assert!(err.to_string().contains("timed out after 1s"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn hanging_server_hits_the_total_timeout() {
    let server = TestServer::start();
    server.route("/hang", Response::status(200).behave(Behaviour::Hang));
    let fetcher = Fetcher::new(FetchSettings {
        timeout: Duration::from_secs(1),
        ..settings(true)
    })
    .unwrap();
    let started = Instant::now();
    let err = fetch_err(&fetcher, &server.url("/hang")).await;
    assert_eq!(err.kind(), "timeout", "{err}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn connection_reset_is_a_network_error() {
    let server = TestServer::start();
    server.route("/reset", Response::status(200).behave(Behaviour::Reset));
    let err = fetch_err(&fetcher(), &server.url("/reset")).await;
    assert!(matches!(err.kind(), "network" | "connect"), "{err}");
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    // Bind and drop a listener to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = fetch_err(&fetcher(), &format!("http://127.0.0.1:{port}/feed")).await;
    assert_eq!(err.kind(), "connect", "{err}");
}

#[tokio::test]
async fn error_statuses_are_reported_with_retry_after() {
    let server = TestServer::start();
    server.route("/boom", Response::status(500));
    server.route("/busy", Response::status(503).header("Retry-After", "120"));
    let fetcher = fetcher();
    let err = fetch_err(&fetcher, &server.url("/boom")).await;
    assert!(
        matches!(
            err,
            FetchError::HttpStatus {
                status: 500,
                retry_after: None
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), "http_status");
    let err = fetch_err(&fetcher, &server.url("/missing")).await;
    assert!(
        matches!(err, FetchError::HttpStatus { status: 404, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("404"));
    let err = fetch_err(&fetcher, &server.url("/busy")).await;
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)), "{err}");
}

#[tokio::test]
async fn permanent_redirect_is_reported_and_temporary_is_not() {
    let server = TestServer::start();
    server.route("/new", Response::ok(RSS, feed_body()));
    server.route("/old", Response::status(301).header("Location", "/new"));
    server.route(
        "/old308",
        Response::status(308).header("Location", &server.url("/new")),
    );
    server.route("/temp", Response::status(302).header("Location", "/new"));
    server.route(
        "/perm-then-temp",
        Response::status(301).header("Location", "/temp"),
    );
    let fetcher = fetcher();
    for (path, moved) in [
        ("/old", Some(server.url("/new"))),
        ("/old308", Some(server.url("/new"))),
        ("/temp", None),
        ("/perm-then-temp", Some(server.url("/temp"))),
    ] {
        let outcome = fetcher
            .fetch(&server.url(path), &Validators::default())
            .await
            .unwrap();
        let FetchOutcome::Fetched {
            final_url,
            moved_permanently_to,
            body,
            ..
        } = outcome
        else {
            panic!("expected a body for {path}");
        };
        assert_eq!(body, feed_body(), "{path}");
        assert_eq!(final_url, server.url("/new"), "{path}");
        assert_eq!(moved_permanently_to, moved, "{path}");
    }
}

#[tokio::test]
async fn redirect_loops_and_long_chains_stop() {
    let server = TestServer::start();
    server.route("/a", Response::status(302).header("Location", "/b"));
    server.route("/b", Response::status(301).header("Location", "/a"));
    for i in 0..10 {
        server.route(
            &format!("/chain{i}"),
            Response::status(302).header("Location", &format!("/chain{}", i + 1)),
        );
    }
    let fetcher = fetcher();
    let err = fetch_err(&fetcher, &server.url("/a")).await;
    assert_eq!(err.kind(), "redirect_loop", "{err}");
    assert_eq!(server.requests_for("/a").len(), 1);
    let err = fetch_err(&fetcher, &server.url("/chain0")).await;
    assert_eq!(err.kind(), "too_many_redirects", "{err}");
}

#[tokio::test]
async fn private_addresses_are_blocked_unless_allowed() {
    let server = TestServer::start();
    server.route("/feed", Response::ok(RSS, feed_body()));
    let guarded = Fetcher::new(settings(false)).unwrap();
    let err = fetch_err(&guarded, &server.url("/feed")).await;
    assert_eq!(err.kind(), "blocked_address", "{err}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert!(
        err.to_string()
            .contains("set [fetch] allow_private_networks = true"),
        "{err}"
    );
    // A name that resolves to loopback is caught after resolution.
    let by_name = server.url("/feed").replace("127.0.0.1", "localhost");
    let err = fetch_err(&guarded, &by_name).await;
    assert_eq!(err.kind(), "blocked_address", "{err}");
    // IPv4-mapped IPv6 spelling of loopback.
    let mapped = server
        .url("/feed")
        .replace("127.0.0.1", "[::ffff:127.0.0.1]");
    let err = fetch_err(&guarded, &mapped).await;
    assert_eq!(err.kind(), "blocked_address", "{err}");
    assert!(
        server.requests_for("/feed").is_empty(),
        "nothing reached the server"
    );

    let open = fetcher();
    for url in [server.url("/feed"), by_name] {
        let outcome = open.fetch(&url, &Validators::default()).await.unwrap();
        assert!(matches!(outcome, FetchOutcome::Fetched { .. }), "{url}");
    }
}

#[tokio::test]
async fn non_http_schemes_are_refused_including_via_redirect() {
    let fetcher = fetcher();
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/feed.xml",
        "gopher://example.com/",
        "not a url",
        "javascript:alert(1)",
    ] {
        let err = fetch_err(&fetcher, url).await;
        assert_eq!(err.kind(), "invalid_url", "{url}: {err}");
    }
    let server = TestServer::start();
    server.route(
        "/to-file",
        Response::status(302).header("Location", "file:///etc/passwd"),
    );
    let err = fetch_err(&fetcher, &server.url("/to-file")).await;
    assert_eq!(err.kind(), "invalid_url", "{err}");
}

#[tokio::test]
async fn charset_from_the_header_reaches_the_parser() {
    let server = TestServer::start();
    let body = b"<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Caf\xe9</title><item><title>Pr\xe9cis</title><guid>1</guid></item></channel></rss>".to_vec();
    server.route(
        "/latin",
        Response::ok("application/rss+xml; charset=ISO-8859-1", body),
    );
    let outcome = fetcher()
        .fetch(&server.url("/latin"), &Validators::default())
        .await
        .unwrap();
    let FetchOutcome::Fetched {
        body,
        content_type,
        final_url,
        ..
    } = outcome
    else {
        panic!("expected a body");
    };
    let feed = parse_feed(&body, content_type.as_deref(), &final_url).unwrap();
    assert_eq!(feed.title.as_deref(), Some("Café"));
    assert_eq!(feed.items[0].title, "Précis");
}

/// What the binary stored for each feed: (feed URL, title, summary, link), one row per item.
fn stored_items(dir: &std::path::Path) -> Vec<(String, String, String, Option<String>)> {
    let conn = rusqlite::Connection::open(dir.join("storywatch.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT f.url, i.title, i.summary, i.link FROM items i JOIN feeds f ON f.id = i.feed_id
             ORDER BY f.url, i.id",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for unit in std::iter::once(0xFEFF)
        .filter(|_| bom)
        .chain(text.encode_utf16())
    {
        out.extend_from_slice(&if big_endian {
            unit.to_be_bytes()
        } else {
            unit.to_le_bytes()
        });
    }
    out
}

#[test]
fn encodings_entities_and_hostile_markup_are_stored_as_clean_text() {
    let server = TestServer::start();
    let one = |title: &str| {
        format!(
            "<rss version=\"2.0\"><channel><title>Enc</title><item><title>{title}</title>\
             <guid>1</guid><link>https://news.example/a</link></item></channel></rss>"
        )
    };
    let accents = "Zölle auf Vorläufer – 中国 “ok”";
    // (path, Content-Type, body, the title that must be stored)
    let mut feeds: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "/utf16le-header",
            "application/rss+xml; charset=utf-16le",
            utf16(&one(accents), false, false),
            accents,
        ),
        (
            "/utf16be-header",
            "text/xml; charset=UTF-16BE",
            utf16(&format!("\n{}", one(accents)), true, false),
            accents,
        ),
        (
            "/utf16le-bom",
            "application/rss+xml",
            utf16(&one(accents), false, true),
            accents,
        ),
        (
            "/utf16be-bom-declared",
            "application/xml",
            utf16(
                &format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-16\"?>{}",
                    one(accents)
                ),
                true,
                true,
            ),
            accents,
        ),
    ];
    let latin = |prefix: &[u8]| {
        [
            prefix,
            b"<rss version=\"2.0\"><channel><item><title>Pr\xe9cis \x93quoted\x94 \x80 5</title><guid>1</guid></item></channel></rss>",
        ]
        .concat()
    };
    feeds.push((
        "/latin1-declared",
        "application/rss+xml",
        latin(b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"),
        // ISO-8859-1 labels mean windows-1252 (WHATWG): 0x93/0x94/0x80 are quotes and euro.
        "Précis “quoted” € 5",
    ));
    feeds.push((
        "/cp1252-undeclared",
        "application/rss+xml",
        latin(b""),
        "Précis “quoted” € 5",
    ));
    feeds.push((
        "/latin1-header",
        "application/rss+xml; charset=iso-8859-1",
        latin(b"<?xml version=\"1.0\"?>"),
        "Précis “quoted” € 5",
    ));
    let hostile = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Hostile &amp; Co</title>
<item><title>Caf&amp;eacute; &amp;amp; &#8220;talks&#8221; &lt;b&gt;bold&lt;/b&gt;&amp;nbsp;resume</title>
<guid>h1</guid><link>javascript:alert(1)</link>
<description><![CDATA[<p>Talks resumed.</p><script>alert('x')</script><style>p{color:red}</style><img src="x" onerror="alert(2)"><a href="javascript:alert(3)" onclick="steal()">click</a> <p onmouseover="hover()">end</p>]]></description></item>
<item><title>Data link</title><guid>h2</guid><link>data:text/html,&lt;script&gt;alert(4)&lt;/script&gt;</link></item>
<item><title>Relative link</title><guid>h3</guid><link>/story/3</link></item>
</channel></rss>"#;
    feeds.push((
        "/hostile",
        "application/rss+xml",
        hostile.as_bytes().to_vec(),
        "",
    ));
    for (path, content_type, body, _) in &feeds {
        server.route(path, Response::ok(content_type, body.clone()));
    }
    let urls: Vec<String> = feeds.iter().map(|(p, ..)| server.url(p)).collect();
    let dir = tempfile::tempdir().unwrap();
    crate::support::write_config(dir.path(), &urls, "");
    let out = crate::support::success(&crate::support::storywatch(
        dir.path(),
        &["--config", "storywatch.toml", "poll", "--once"],
        None,
    ));
    assert!(out.contains("polled 8 feeds: 8 ok, 0 failed"), "{out}");

    let stored = stored_items(dir.path());
    for (path, _, _, title) in feeds.iter().filter(|(p, ..)| *p != "/hostile") {
        let rows: Vec<_> = stored
            .iter()
            .filter(|(url, ..)| *url == server.url(path))
            .collect();
        assert_eq!(rows.len(), 1, "{path}: {stored:?}");
        assert_eq!(rows[0].1, *title, "{path}");
    }
    let hostile: Vec<_> = stored
        .iter()
        .filter(|(url, ..)| *url == server.url("/hostile"))
        .collect();
    assert_eq!(hostile.len(), 3, "{hostile:?}");
    let (_, title, summary, link) = hostile[0];
    assert_eq!(title, "Café & “talks” bold resume");
    assert!(summary.contains("Talks resumed."), "{summary}");
    assert!(
        summary.contains("click") && summary.contains("end"),
        "{summary}"
    );
    for banned in [
        "alert",
        "color:red",
        "onerror",
        "onclick",
        "hover",
        "javascript",
        "<",
        ">",
    ] {
        assert!(!summary.contains(banned), "{banned:?} left in {summary:?}");
        assert!(!title.contains(banned), "{banned:?} left in {title:?}");
    }
    assert_eq!(*link, None, "a javascript: link is dropped");
    assert_eq!(hostile[1].3, None, "a data: link is dropped");
    assert_eq!(
        hostile[2].3.as_deref(),
        Some(server.url("/story/3").as_str())
    );
}

/// Reads one request's head from `stream` (up to the blank line), so the answer comes after it.
async fn read_request_head(stream: &mut tokio::net::TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_listener_that_never_accepts_hits_the_connect_timeout() {
    // Backlog 0 and the queue filled by one connection nobody accepts: the kernel drops further
    // SYNs, so the fetcher's connect can only end by its own timeout.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let connect = tokio::net::TcpStream::connect(address);
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_millis(300), connect).await {
            fillers.push(stream);
        }
    }
    let fetcher = Fetcher::new(FetchSettings {
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_millis(500),
        ..settings(true)
    })
    .unwrap();
    let started = Instant::now();
    let err = fetch_err(&fetcher, &format!("http://{address}/feed")).await;
    assert_eq!(err.kind(), "connect", "{err}");
    assert!(
        err.to_string()
            .contains("no connection within 500ms ([fetch] connect_timeout)"),
        "{err}"
    );
    // The connect limit ended it, not the 10 s limit for the whole exchange.
    assert!(started.elapsed() < Duration::from_secs(8), "{err}");
    drop((listener, fillers));
}

#[tokio::test]
async fn an_endless_body_is_cut_at_the_cap_while_streaming() {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = std::sync::Arc::clone(&sent);
    tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return;
        };
        read_request_head(&mut stream).await;
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\
                    Transfer-Encoding: chunked\r\n\r\n";
        if stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let chunk = [b'x'; 8192];
        let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        // Forever, as fast as the client reads, until it hangs up.
        while stream.write_all(&frame).await.is_ok() {
            counter.fetch_add(chunk.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let fetcher = Fetcher::new(FetchSettings {
        timeout: Duration::from_secs(20),
        ..settings(true)
    })
    .unwrap();
    let err = fetch_err(&fetcher, &format!("http://{address}/endless")).await;
    // Too large, not a timeout: the cap ended the exchange, long before the time limit did.
    assert_eq!(err.kind(), "too_large", "{err}");
    // And the fetcher stopped reading soon after the cap (64 KiB), not after megabytes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let streamed = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(streamed < 16 * 1024 * 1024, "{streamed} bytes were sent");
}

#[tokio::test]
async fn a_reset_connection_is_a_network_error() {
    // SO_LINGER 0 makes close send a TCP RST instead of a FIN: a real "connection reset by peer",
    // once before any answer and once in the middle of the body.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut served = 0;
        while let Ok((mut stream, _)) = listener.accept().await {
            read_request_head(&mut stream).await;
            if served % 2 == 1 {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n\
                            Content-Length: 10000\r\n\r\n<rss version=\"2.0\"><channel>";
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.flush().await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = stream.set_zero_linger();
            drop(stream);
            served += 1;
        }
    });
    let fetcher = fetcher();
    let url = format!("http://{address}/feed");
    let before_answer = fetch_err(&fetcher, &url).await;
    assert_eq!(before_answer.kind(), "network", "{before_answer}");
    let mid_body = fetch_err(&fetcher, &url).await;
    assert_eq!(mid_body.kind(), "network", "{mid_body}");
    assert!(
        mid_body.to_string().to_lowercase().contains("reset"),
        "{mid_body}"
    );
}

#[tokio::test]
async fn a_redirect_hop_to_a_guarded_address_is_refused() {
    let server = TestServer::start();
    server.route("/feed", Response::ok(RSS, feed_body()));
    // The configured URL is allowed (the test hook stands in for a public address); the hop
    // to loopback, by literal or by a name resolving to it, is not.
    let port = server
        .url("/")
        .split(':')
        .nth(2)
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    server.route(
        "/to-literal",
        Response::status(302).header("Location", &format!("http://127.0.0.1:{port}/feed")),
    );
    server.route(
        "/to-name",
        Response::status(301).header("Location", &format!("http://localhost:{port}/feed")),
    );
    server.route(
        "/to-mapped",
        Response::status(308).header("Location", &format!("http://[::ffff:7f00:1]:{port}/feed")),
    );
    server.route(
        "/to-metadata",
        Response::status(307).header("Location", "http://169.254.169.254/latest/meta-data/"),
    );
    let guarded = Fetcher::new(settings(false))
        .unwrap()
        .exempt_first_hop_from_guard();
    for (path, class) in [
        ("/to-literal", "loopback"),
        ("/to-name", "loopback"),
        ("/to-mapped", "loopback"),
        ("/to-metadata", "link-local"),
    ] {
        let err = fetch_err(&guarded, &server.url(path)).await;
        assert_eq!(err.kind(), "blocked_address", "{path}: {err}");
        assert!(err.to_string().contains(class), "{path}: {err}");
        assert_eq!(server.requests_for(path).len(), 1, "{path}");
    }
    assert!(
        server.requests_for("/feed").is_empty(),
        "no redirect reached the guarded target"
    );
    // Without a redirect, the hook lets the first hop through (so the refusals above are the
    // hop's, not the first URL's).
    let outcome = guarded
        .fetch(&server.url("/feed"), &Validators::default())
        .await
        .unwrap();
    assert!(matches!(outcome, FetchOutcome::Fetched { .. }));
}
