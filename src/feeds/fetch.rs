//! HTTP fetching of feeds: conditional GET, timeouts, a body-size cap and an SSRF guard.
//!
//! Every exchange is bounded in time (connect and total, body streaming included, so a server
//! trickling one byte a second cannot hold a task forever) and in size (checked against
//! `Content-Length` and again while streaming, after decompression, so a gzip bomb is caught too).
//! Redirects are followed by hand, so permanent moves can be reported and loops stopped, and so
//! every hop's target goes through the same checks as the first URL.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, DATE, ETAG, EXPIRES, HeaderMap,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION, RETRY_AFTER,
};
use url::{Host, Url};

/// The error kind of an answer that asks to be left alone for a while: 429 Too Many Requests,
/// or any error status with `Retry-After`. Unlike other failures, such a wait is honoured even
/// by `poll --once`, which otherwise polls every feed at once: a publisher that says "not
/// before" means it, and ignoring it is how clients get banned.
pub const RATE_LIMITED: &str = "rate_limited";

/// Most redirects followed for one fetch; real feeds need one or two.
pub const MAX_REDIRECTS: usize = 5;

/// How the fetcher behaves; built from the `[fetch]` config section.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Limit for the whole exchange, connect to last body byte.
    pub timeout: Duration,
    /// Limit for establishing the TCP/TLS connection.
    pub connect_timeout: Duration,
    /// Largest body accepted; enforced while streaming.
    pub max_body_bytes: u64,
    /// Allow loopback/private/link-local targets (tests and local feeds).
    pub allow_private_networks: bool,
    /// The `User-Agent` header.
    pub user_agent: String,
}

/// HTTP cache validators remembered between polls of one feed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    /// The `ETag` of the last body, sent back as `If-None-Match`.
    pub etag: Option<String>,
    /// The `Last-Modified` of the last body, sent back as `If-Modified-Since`.
    pub last_modified: Option<String>,
}

/// What the server said about how soon it is worth asking again: `Cache-Control: max-age`,
/// `Expires` (read against the server's own `Date`, so a skewed clock does not matter) and
/// `Retry-After`. The scheduler treats each as a minimum wait before the next poll.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheHints {
    /// `Cache-Control: max-age` (or `s-maxage`, whichever is larger).
    pub max_age: Option<Duration>,
    /// How far in the future `Expires` lies, measured from the response's `Date`.
    pub expires_in: Option<Duration>,
    /// `Retry-After`, seconds or HTTP date.
    pub retry_after: Option<Duration>,
}

impl CacheHints {
    /// Reads the hints from response headers. Unparseable values are ignored: a hint is only a
    /// hint, never a reason to fail a poll.
    pub fn from_headers(headers: &HeaderMap) -> CacheHints {
        CacheHints {
            max_age: parse_max_age(headers),
            expires_in: parse_expires(headers),
            retry_after: parse_retry_after(headers),
        }
    }

    /// The longest of the hints: the earliest the server wants to be asked again.
    pub fn min_wait(&self) -> Option<Duration> {
        [self.max_age, self.expires_in, self.retry_after]
            .into_iter()
            .flatten()
            .max()
    }
}

/// A successful exchange.
#[derive(Debug)]
pub enum FetchOutcome {
    /// 304: nothing changed since the validators were issued.
    NotModified {
        /// The server's caching hints on the 304.
        cache: CacheHints,
        /// Set when the feed answered with a permanent redirect (301/308) before the 304: its
        /// new URL. A move must be recorded even when nothing changed at the new address, or the
        /// feed would pay the extra hop on every poll.
        moved_permanently_to: Option<String>,
    },
    /// 200 with a body.
    Fetched {
        /// The body, decompressed, at most `max_body_bytes` long. Bytes, not text: the parser
        /// works out the encoding.
        body: Vec<u8>,
        /// The `Content-Type` header, for its charset and for recognising HTML pages.
        content_type: Option<String>,
        /// Validators to send on the next poll.
        validators: Validators,
        /// Where the body finally came from, after redirects.
        final_url: String,
        /// Set when the feed answered with a permanent redirect (301/308): its new URL.
        moved_permanently_to: Option<String>,
        /// The server's caching hints.
        cache: CacheHints,
    },
}

/// Why a fetch failed. Messages say what happened and, where there is one, what to do.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL cannot be fetched at all (unparseable, not http/https, no host).
    #[error("invalid feed URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (or as a redirect gave it).
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The target resolves to (or is) an address the SSRF guard refuses.
    #[error(
        "{}{class}, which feeds may not reach; \
         set [fetch] allow_private_networks = true to allow it",
        blocked_subject(host, *address)
    )]
    BlockedAddress {
        /// The host name (or literal) from the URL.
        host: String,
        /// The first refused address.
        address: IpAddr,
        /// Why it is refused: `loopback`, `private`, `link-local`, ….
        class: &'static str,
    },
    /// The whole exchange took longer than the configured total timeout.
    #[error("timed out after {}; the server is too slow or not answering", fmt_duration(*.after))]
    Timeout {
        /// The limit that was hit.
        after: Duration,
    },
    /// No connection could be made (DNS failure, refused, unreachable, TLS failure, connect
    /// timeout).
    #[error("could not connect to {host}: {detail}")]
    Connect {
        /// The host that could not be reached.
        host: String,
        /// The underlying reason, outermost first.
        detail: String,
    },
    /// The connection broke during the exchange (reset, closed early, protocol error).
    #[error("connection to {host} failed during the exchange: {detail}")]
    Network {
        /// The host of the broken exchange.
        host: String,
        /// The underlying reason, outermost first.
        detail: String,
    },
    /// The server answered with a status other than 2xx or 304.
    #[error("the server answered HTTP {status}{}", retry_hint(*.retry_after))]
    HttpStatus {
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, when it sent one (429 and 503 usually do).
        retry_after: Option<Duration>,
    },
    /// The body is larger than `max_body_bytes`.
    #[error(
        "body larger than {} cap; raise [fetch] max_body_size if this feed is really that big",
        fmt_bytes(*.limit)
    )]
    TooLarge {
        /// The cap that was exceeded.
        limit: u64,
    },
    /// A redirect pointed back at a URL already visited.
    #[error("redirect loop: {url} was reached twice; the server is misconfigured")]
    RedirectLoop {
        /// The URL seen twice.
        url: String,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("more than {MAX_REDIRECTS} redirects; use the final feed URL instead")]
    TooManyRedirects,
    /// A redirect without a usable `Location`.
    #[error("HTTP {status} redirect without a usable Location header")]
    BadRedirect {
        /// The redirect status.
        status: u16,
    },
    /// The body could not be read or decompressed.
    #[error("could not read the body: {detail}")]
    Body {
        /// The underlying reason.
        detail: String,
    },
    /// The HTTP client could not be built (bad user agent, TLS setup).
    #[error("could not set up the HTTP client: {detail}")]
    Client {
        /// The underlying reason.
        detail: String,
    },
}

impl FetchError {
    /// A short stable name for the kind of failure (`timeout`, `http_status`, …), recorded in the
    /// feed's state and shown by `feeds list`.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::InvalidUrl { .. } => "invalid_url",
            FetchError::BlockedAddress { .. } => "blocked_address",
            FetchError::Timeout { .. } => "timeout",
            FetchError::Connect { .. } => "connect",
            FetchError::Network { .. } => "network",
            FetchError::HttpStatus {
                status,
                retry_after,
            } if *status == 429 || retry_after.is_some() => RATE_LIMITED,
            FetchError::HttpStatus { .. } => "http_status",
            FetchError::TooLarge { .. } => "too_large",
            FetchError::RedirectLoop { .. } => "redirect_loop",
            FetchError::TooManyRedirects => "too_many_redirects",
            FetchError::BadRedirect { .. } => "bad_redirect",
            FetchError::Body { .. } => "body",
            FetchError::Client { .. } => "client",
        }
    }

    /// How long the server asked us to wait before the next try, when it said so.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            FetchError::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn blocked_subject(host: &str, address: IpAddr) -> String {
    let literal = host.trim_matches(['[', ']']).parse::<IpAddr>().ok() == Some(address);
    if literal {
        format!("address {address} is ")
    } else {
        format!("{host} resolves to {address}, which is ")
    }
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" and asked to retry after {}", fmt_duration(d)),
        None => String::new(),
    }
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn fmt_bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= 1024 && n.is_multiple_of(1024) {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}

/// A reusable HTTP client for feeds.
#[derive(Debug, Clone)]
pub struct Fetcher {
    settings: FetchSettings,
    client: reqwest::Client,
    /// Test hook (see [`Fetcher::exempt_first_hop_from_guard`]).
    first_hop_exempt: bool,
}

impl Fetcher {
    /// Builds the client: one connection pool shared by every fetch.
    pub fn new(settings: FetchSettings) -> Result<Fetcher, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            reqwest::header::HeaderValue::from_static(
                "application/rss+xml, application/atom+xml, application/feed+json, \
                 application/xml;q=0.9, text/xml;q=0.9, application/json;q=0.8, */*;q=0.5",
            ),
        );
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(settings.user_agent.as_str())
            .connect_timeout(settings.connect_timeout)
            // Belt and braces: `fetch` also wraps everything in its own timeout.
            .timeout(settings.timeout)
            // Redirects are followed by hand (see `fetch`).
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, bypassing the address guard below.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: settings.allow_private_networks,
            }))
            .build()
            .map_err(|e| FetchError::Client {
                detail: error_chain(&e),
            })?;
        Ok(Fetcher {
            settings,
            client,
            first_hop_exempt: false,
        })
    }

    /// For tests only: the configured URL's IP literal is not checked against the address
    /// guard, every redirect hop still is. A test server can only listen on loopback, and this
    /// is how a test shows that a redirect from an allowed address to a guarded one is refused
    /// with `allow_private_networks = false`. Nothing in the config can set it.
    #[doc(hidden)]
    pub fn exempt_first_hop_from_guard(mut self) -> Fetcher {
        self.first_hop_exempt = true;
        self
    }

    /// Fetches `url`, sending the validators for a conditional GET.
    ///
    /// The whole exchange — every redirect hop and the body — must finish within the configured
    /// timeout.
    pub async fn fetch(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let limit = self.settings.timeout;
        match tokio::time::timeout(limit, self.fetch_inner(url, validators)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { after: limit }),
        }
    }

    async fn fetch_inner(
        &self,
        url: &str,
        validators: &Validators,
    ) -> Result<FetchOutcome, FetchError> {
        let mut current = self.check_url(url, !self.first_hop_exempt)?;
        let mut visited = HashSet::from([current.to_string()]);
        let mut moved_permanently_to = None;
        // Only an unbroken run of permanent redirects from the configured URL moves the feed;
        // after a temporary one, the configured URL stays the right one to poll.
        let mut all_permanent = true;
        let mut hops = 0;
        loop {
            let response = self.send(&current, validators).await?;
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return self.finish(response, current, moved_permanently_to).await;
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| current.join(loc.trim()).ok())
                .ok_or(FetchError::BadRedirect {
                    status: status.as_u16(),
                })?;
            hops += 1;
            if hops > MAX_REDIRECTS {
                return Err(FetchError::TooManyRedirects);
            }
            let next = self.check_url(location.as_str(), true)?;
            if !visited.insert(next.to_string()) {
                return Err(FetchError::RedirectLoop {
                    url: next.to_string(),
                });
            }
            let permanent = matches!(
                status,
                StatusCode::MOVED_PERMANENTLY | StatusCode::PERMANENT_REDIRECT
            );
            all_permanent &= permanent;
            if all_permanent {
                moved_permanently_to = Some(next.to_string());
            }
            current = next;
        }
    }

    async fn send(
        &self,
        url: &Url,
        validators: &Validators,
    ) -> Result<reqwest::Response, FetchError> {
        let mut request = self.client.get(url.clone());
        if let Some(etag) = &validators.etag {
            request = request.header(IF_NONE_MATCH, etag.as_str());
        }
        if let Some(last_modified) = &validators.last_modified {
            request = request.header(IF_MODIFIED_SINCE, last_modified.as_str());
        }
        request.send().await.map_err(|e| self.map_error(&e, url))
    }

    /// Turns the final response into an outcome: 304, a body, or an HTTP status error.
    async fn finish(
        &self,
        mut response: reqwest::Response,
        url: Url,
        moved_permanently_to: Option<String>,
    ) -> Result<FetchOutcome, FetchError> {
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(FetchOutcome::NotModified {
                cache: CacheHints::from_headers(response.headers()),
                moved_permanently_to,
            });
        }
        if !status.is_success() {
            return Err(FetchError::HttpStatus {
                status: status.as_u16(),
                retry_after: parse_retry_after(response.headers()),
            });
        }
        let limit = self.settings.max_body_bytes;
        // reqwest drops Content-Length when it decompresses, so this only sees honest raw sizes.
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit) {
            return Err(FetchError::TooLarge { limit });
        }
        let headers = response.headers();
        let header = |name| {
            headers
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let content_type = header(CONTENT_TYPE);
        let cache = CacheHints::from_headers(headers);
        let validators = Validators {
            etag: header(ETAG),
            last_modified: header(LAST_MODIFIED),
        };
        let capacity = declared.unwrap_or(0).min(limit).min(1 << 20);
        let mut body = Vec::with_capacity(usize::try_from(capacity).unwrap_or(0));
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| self.map_error(&e, &url))?;
            let Some(chunk) = chunk else { break };
            if body.len() as u64 + chunk.len() as u64 > limit {
                return Err(FetchError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Fetched {
            body,
            content_type,
            validators,
            final_url: url.to_string(),
            moved_permanently_to,
            cache,
        })
    }

    /// Parses `raw` and refuses what must never be fetched: other schemes, hostless URLs, and
    /// (unless allowed, or `guarded` is false) IP literals in guarded ranges. Host names are
    /// checked after resolution by [`GuardedResolver`].
    fn check_url(&self, raw: &str, guarded: bool) -> Result<Url, FetchError> {
        let invalid = |reason: &str| FetchError::InvalidUrl {
            url: raw.to_string(),
            reason: reason.to_string(),
        };
        let url = Url::parse(raw.trim()).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(&format!(
                "scheme {:?} is not allowed; only http and https feeds can be fetched",
                url.scheme()
            )));
        }
        let address = match url.host() {
            None => return Err(invalid("the URL has no host")),
            Some(Host::Domain(_)) => None,
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        };
        if let Some(address) = address
            && guarded
            && !self.settings.allow_private_networks
            && let Some(class) = blocked_class(address)
        {
            return Err(FetchError::BlockedAddress {
                host: url.host_str().unwrap_or_default().to_string(),
                address,
                class,
            });
        }
        Ok(url)
    }

    fn map_error(&self, error: &reqwest::Error, url: &Url) -> FetchError {
        // The resolver's refusal travels inside reqwest's error; bring it back out as itself.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
        while let Some(e) = source {
            if let Some(blocked) = e.downcast_ref::<BlockedByGuard>() {
                return FetchError::BlockedAddress {
                    host: blocked.host.clone(),
                    address: blocked.address,
                    class: blocked.class,
                };
            }
            source = e.source();
        }
        let host = url.host_str().unwrap_or_default().to_string();
        let detail = error_chain(error);
        if error.is_timeout() && !error.is_connect() {
            FetchError::Timeout {
                after: self.settings.timeout,
            }
        } else if error.is_connect() && error.is_timeout() {
            FetchError::Connect {
                host,
                detail: format!(
                    "no connection within {} ([fetch] connect_timeout); the host is down or \
                     something drops the packets",
                    fmt_duration(self.settings.connect_timeout)
                ),
            }
        } else if error.is_connect() {
            FetchError::Connect { host, detail }
        } else if broken_connection(error) {
            // A reset in the middle of the body is the network's failure, not the body's.
            FetchError::Network { host, detail }
        } else if error.is_body() || error.is_decode() {
            FetchError::Body { detail }
        } else {
            FetchError::Network { host, detail }
        }
    }
}

/// Whether the connection itself broke (reset, aborted, closed early) somewhere in the chain.
fn broken_connection(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut source = Some(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            )
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// The error's message followed by its causes, without the URL reqwest repeats in each.
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    // The outermost reqwest message only repeats the URL; start at its cause when it has one.
    let mut source: Option<&(dyn std::error::Error + 'static)> = error.source().or(Some(error));
    while let Some(e) = source {
        let text = e.to_string();
        if text.starts_with("client error (") {
            source = e.source();
            continue;
        }
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    if parts.is_empty() {
        return error.to_string();
    }
    parts.join(": ")
}

/// Parses `Retry-After`: delay-seconds or an HTTP date.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = parse_http_date(value)?;
    let wait = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// An HTTP date in any of the three forms RFC 9110 §5.6.7 obliges a recipient to accept:
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850 form
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and C's asctime (`Sun Nov  6 08:49:37 1994`). Old servers
/// and caches still send the last two; ignoring them would mean ignoring a server's wait.
fn parse_http_date(value: &str) -> Option<jiff::Timestamp> {
    let now_year = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .year();
    parse_http_date_at(value, now_year)
}

/// [`parse_http_date`] with the current year given, which the RFC 850 form's two-digit year is
/// read against.
fn parse_http_date_at(value: &str, now_year: i16) -> Option<jiff::Timestamp> {
    let value = value.trim();
    if let Ok(zoned) = jiff::fmt::rfc2822::parse(value) {
        return Some(zoned.timestamp());
    }
    let utc = |dt: jiff::civil::DateTime| dt.to_zoned(jiff::tz::TimeZone::UTC).ok();
    if let Some((_weekday, rest)) = value.split_once(", ") {
        // RFC 850: `06-Nov-94 08:49:37 GMT`.
        let rest = rest.trim().strip_suffix("GMT")?.trim_end();
        let (date, time) = rest.split_once(' ')?;
        let mut parts = date.split('-');
        let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || year.len() != 2 {
            return None;
        }
        let two_digits: i16 = year.parse().ok()?;
        // RFC 9110: a two-digit year more than 50 years ahead belongs to the previous century.
        let mut full = now_year - now_year.rem_euclid(100) + two_digits;
        if full > now_year + 50 {
            full -= 100;
        }
        let text = format!("{day}-{month}-{full} {time}");
        let dt = jiff::civil::DateTime::strptime("%d-%b-%Y %H:%M:%S", &text).ok()?;
        return utc(dt).map(|z| z.timestamp());
    }
    // asctime: `Sun Nov  6 08:49:37 1994` (the day padded with a space, not a zero).
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.len() != 5 {
        return None;
    }
    let dt = jiff::civil::DateTime::strptime("%a %b %d %H:%M:%S %Y", words.join(" ")).ok()?;
    utc(dt).map(|z| z.timestamp())
}

/// `Cache-Control: max-age=N` (the larger of `max-age` and `s-maxage`). `no-cache`/`no-store`
/// say nothing about polling frequency and are ignored.
fn parse_max_age(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|directive| {
            let (name, value) = directive.trim().split_once('=')?;
            let name = name.trim();
            if !(name.eq_ignore_ascii_case("max-age") || name.eq_ignore_ascii_case("s-maxage")) {
                return None;
            }
            value.trim().trim_matches('"').parse::<u64>().ok()
        })
        .max()
        .map(Duration::from_secs)
}

/// How far `Expires` lies after the response's `Date` (or after now, without a `Date`).
/// `Expires: 0` and other invalid dates mean "already expired" per RFC 9111: no hint.
fn parse_expires(headers: &HeaderMap) -> Option<Duration> {
    let expires = parse_http_date(headers.get(EXPIRES)?.to_str().ok()?)?;
    let date = headers
        .get(DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
        .unwrap_or_else(jiff::Timestamp::now);
    let wait = Duration::try_from(expires.duration_since(date)).ok()?;
    (!wait.is_zero()).then_some(wait)
}

/// The resolver's refusal, carried through reqwest's error chain to [`Fetcher::map_error`].
#[derive(Debug)]
struct BlockedByGuard {
    host: String,
    address: IpAddr,
    class: &'static str,
}

impl fmt::Display for BlockedByGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} resolves to {} ({})",
            self.host, self.address, self.class
        )
    }
}

impl std::error::Error for BlockedByGuard {}

/// Resolves names with the system resolver and removes guarded addresses from the answer.
///
/// Checking after resolution (rather than the name) is what stops DNS tricks such as a public
/// name pointing at 127.0.0.1, and because reqwest uses the resolver for every connection, it
/// covers every redirect hop too. The connection can only go to an address this returned, so
/// there is no gap between check and use for DNS rebinding to exploit.
#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if allow_private {
                return Ok(Box::new(resolved.into_iter()) as reqwest::dns::Addrs);
            }
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match blocked_class(addr.ip()) {
                    Some(class) => {
                        refused.get_or_insert((addr.ip(), class));
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty()
                && let Some((address, class)) = refused
            {
                return Err(Box::new(BlockedByGuard {
                    host,
                    address,
                    class,
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why `ip` must not be fetched from, or `None` when it is a public address.
pub fn blocked_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if a == 100 && (64..128).contains(&b) {
        "carrier-grade NAT (shared)"
    } else if ip.is_multicast() {
        "multicast"
    } else if ip.is_broadcast() {
        "broadcast"
    } else if a == 0 {
        "unspecified"
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (18..20).contains(&b)) || a >= 240 {
        "reserved"
    } else if (a == 192 && b == 0 && c == 2)
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        "documentation-only"
    } else {
        return None;
    })
}

fn blocked_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    // Addresses that embed an IPv4 address are judged by it: IPv4-mapped (::ffff:a.b.c.d),
    // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16).
    if let Some(v4) = ip.to_ipv4_mapped() {
        return blocked_v4(v4);
    }
    if segments[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        return blocked_v4(Ipv4Addr::from(ip.to_bits() as u32));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return blocked_v4(Ipv4Addr::from(ip.to_bits() as u32));
    }
    if segments[0] == 0x2002 {
        let embedded = (u32::from(segments[1]) << 16) | u32::from(segments[2]);
        return blocked_v4(Ipv4Addr::from(embedded));
    }
    Some(if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if ip.is_multicast() {
        "multicast"
    } else if segments[0] & 0xfe00 == 0xfc00 {
        "private (unique local)"
    } else if segments[0] & 0xffc0 == 0xfe80 {
        "link-local"
    } else if segments[0] & 0xffc0 == 0xfec0 {
        "site-local"
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        "documentation-only"
    } else {
        return None;
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocked(s: &str) -> Option<&'static str> {
        blocked_class(s.parse().unwrap())
    }

    #[test]
    fn guard_refuses_non_public_addresses() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
        ] {
            assert!(blocked(ip).is_some(), "{ip} must be blocked");
        }
    }

    #[test]
    fn guard_allows_public_addresses() {
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(blocked(ip), None, "{ip} must be allowed");
        }
    }

    #[test]
    fn cache_hints_are_read_from_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            CACHE_CONTROL,
            "public, max-age=600, s-maxage=\"900\"".parse().unwrap(),
        );
        headers.insert(DATE, "Tue, 12 Mar 2024 10:00:00 GMT".parse().unwrap());
        headers.insert(EXPIRES, "Tue, 12 Mar 2024 11:00:00 GMT".parse().unwrap());
        headers.insert(RETRY_AFTER, "120".parse().unwrap());
        let hints = CacheHints::from_headers(&headers);
        assert_eq!(hints.max_age, Some(Duration::from_secs(900)));
        assert_eq!(hints.expires_in, Some(Duration::from_secs(3600)));
        assert_eq!(hints.retry_after, Some(Duration::from_secs(120)));
        assert_eq!(hints.min_wait(), Some(Duration::from_secs(3600)));

        let mut junk = HeaderMap::new();
        junk.insert(CACHE_CONTROL, "no-cache, max-age=soon".parse().unwrap());
        junk.insert(EXPIRES, "0".parse().unwrap());
        assert_eq!(CacheHints::from_headers(&junk), CacheHints::default());
        assert_eq!(CacheHints::default().min_wait(), None);
    }

    #[test]
    fn http_dates_are_read_in_all_three_forms() {
        let expected: jiff::Timestamp = "1994-11-06T08:49:37Z".parse().unwrap();
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            " Sun Nov 6 08:49:37 1994 ",
        ] {
            assert_eq!(parse_http_date_at(form, 2026), Some(expected), "{form:?}");
        }
        // The two-digit year is the nearest one not more than 50 years ahead.
        let in_2030: jiff::Timestamp = "2030-03-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            parse_http_date_at("Friday, 01-Mar-30 00:00:00 GMT", 2026),
            Some(in_2030)
        );
        let in_1977: jiff::Timestamp = "1977-03-01T00:00:00Z".parse().unwrap();
        assert_eq!(
            parse_http_date_at("Tuesday, 01-Mar-77 00:00:00 GMT", 2026),
            Some(in_1977)
        );
        for junk in [
            "",
            "0",
            "soon",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 PST",
            "Sun Nov 6 08:49:37",
            "Sun Nov 31 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date_at(junk, 2026), None, "{junk:?}");
        }
    }

    #[test]
    fn retry_after_and_expires_accept_obsolete_date_forms() {
        let mut headers = HeaderMap::new();
        headers.insert(DATE, "Sunday, 06-Nov-94 08:49:37 GMT".parse().unwrap());
        headers.insert(EXPIRES, "Sun Nov  6 09:49:37 1994".parse().unwrap());
        assert_eq!(parse_expires(&headers), Some(Duration::from_secs(3600)));
        // A Retry-After date in the past means "now", not "no hint".
        headers.insert(RETRY_AFTER, "Sun Nov  6 08:49:37 1994".parse().unwrap());
        assert_eq!(parse_retry_after(&headers), Some(Duration::ZERO));
    }

    #[test]
    fn messages_tell_the_user_what_to_do() {
        let e = FetchError::BlockedAddress {
            host: "127.0.0.1".into(),
            address: "127.0.0.1".parse().unwrap(),
            class: "loopback",
        };
        assert_eq!(
            e.to_string(),
            "address 127.0.0.1 is loopback, which feeds may not reach; \
             set [fetch] allow_private_networks = true to allow it"
        );
        assert_eq!(e.kind(), "blocked_address");
        let e = FetchError::BlockedAddress {
            host: "intranet.example".into(),
            address: "10.0.0.7".parse().unwrap(),
            class: "private",
        };
        assert!(
            e.to_string()
                .starts_with("intranet.example resolves to 10.0.0.7, which is private")
        );
        let e = FetchError::Timeout {
            after: Duration::from_secs(20),
        };
        assert!(e.to_string().contains("timed out after 20s"));
        let e = FetchError::TooLarge {
            limit: 5 * 1024 * 1024,
        };
        assert!(e.to_string().contains("body larger than 5 MiB cap"));
        let e = FetchError::HttpStatus {
            status: 503,
            retry_after: Some(Duration::from_secs(120)),
        };
        assert_eq!(
            e.to_string(),
            "the server answered HTTP 503 and asked to retry after 120s"
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
        assert_eq!(e.kind(), RATE_LIMITED);
        let e = FetchError::HttpStatus {
            status: 429,
            retry_after: None,
        };
        assert_eq!(e.kind(), RATE_LIMITED);
        let e = FetchError::HttpStatus {
            status: 503,
            retry_after: None,
        };
        assert_eq!(e.kind(), "http_status");
    }
}
