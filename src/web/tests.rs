//! Handler tests: every route through the real router (guard included), over a real SQLite
//! file filled through the store API, with hostile feed content.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use jiff::Timestamp;
use tower::ServiceExt;

use super::*;
use crate::config::FeedConfig;
use crate::digest::model::http_link;
use crate::feeds::Validators;
use crate::item::Item;
use crate::store::{FetchedPoll, MatchFilter, Store};
use crate::story::{BaselineArticle, Verdict, VerdictKind};
use pages::anchor;

const STORY: &str = "fentanyl";
const HOST: &str = "127.0.0.1:8470";
const TOKEN: &str = "0123456789abcdef0123";

fn item(key: &str, title: &str, summary: &str, link: &str) -> Item {
    Item {
        dedup_key: key.into(),
        title: title.into(),
        summary: summary.into(),
        content: String::new(),
        link: Some(link.into()),
        published: Some(Timestamp::from_second(1_760_000_000).unwrap()),
        source: Some("Wire <b>".into()),
    }
}

fn verdict(kind: VerdictKind) -> Verdict {
    Verdict {
        verdict: kind,
        score: 0.75,
        baseline: Some("001_talks".into()),
        why: vec!["terms: fentanyl <i>".into()],
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<Mutex<Store>>,
    state: WebState,
}

fn fixture(token: Option<&str>, readiness: Readiness) -> Fixture {
    fixture_with(token, readiness, false)
}

/// The second story of [`two_stories`]: it matches item 2 as a follow-up and item 3 as
/// related, and passes over item 1.
const OTHER: &str = "tariffs & trade";

fn two_stories() -> Fixture {
    fixture_with(None, Readiness::DatabaseOnly, true)
}

fn fixture_with(token: Option<&str>, readiness: Readiness, second: bool) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("t.db")).unwrap();
    store
        .sync_feeds(&[FeedConfig {
            url: "https://wire.example/feed".into(),
            interval: Duration::from_secs(1800),
            title: None,
        }])
        .unwrap();
    let feed_id = store.active_feeds().unwrap()[0].id;
    let items = vec![
        (
            item(
                "1",
                "<script>alert('x')</script> Talks resume",
                "<img src=x onerror=alert(1)> summary",
                "javascript:alert(1)",
            ),
            verdict(VerdictKind::FollowUp),
        ),
        (
            item(
                "2",
                "Precursor chemicals listed",
                "new list",
                "https://news.example/2",
            ),
            verdict(VerdictKind::Related),
        ),
        (
            item(
                "3",
                "Harbour seizure of precursor shipment",
                "customs",
                "https://news.example/3",
            ),
            verdict(VerdictKind::OffTopic),
        ),
    ];
    let more = if second {
        vec![(
            OTHER.to_string(),
            vec![
                verdict(VerdictKind::OffTopic),
                verdict(VerdictKind::FollowUp),
                verdict(VerdictKind::Related),
            ],
        )]
    } else {
        Vec::new()
    };
    record(&mut store, feed_id, &items, &more);
    let store = Arc::new(Mutex::new(store));
    let story = StoryView {
        name: STORY.into(),
        baselines: vec![BaselineArticle {
            id: "001_talks".into(),
            title: "Baseline <em>talks</em>".into(),
            outlet: Some("Bloomberg".into()),
            published: Some(jiff::civil::date(2025, 11, 1)),
            url: Some("javascript:alert(2)".into()),
            text: String::new(),
        }],
        summary: "top terms: fentanyl <b>".into(),
        story: None,
    };
    let mut views = vec![story];
    if second {
        views.push(StoryView {
            name: OTHER.into(),
            baselines: Vec::new(),
            summary: "top terms: tariff".into(),
            story: None,
        });
    }
    let state = WebState::new(
        Arc::clone(&store),
        StoryViews::new(views),
        WebOptions {
            listen: HOST.parse().unwrap(),
            token: token.map(str::to_string),
            timezone: jiff::tz::TimeZone::UTC,
            readiness,
        },
    )
    .unwrap();
    Fixture {
        _dir: dir,
        store,
        state,
    }
}

/// Stores one poll of the fixture's feed with the given verdicts.
fn record(
    store: &mut Store,
    feed_id: i64,
    items: &[(Item, Verdict)],
    more: &[(String, Vec<Verdict>)],
) {
    let now = Timestamp::now();
    store
        .record_fetched(&FetchedPoll {
            feed_id,
            story: STORY,
            feed_title: Some("Wire"),
            validators: &Validators {
                etag: None,
                last_modified: None,
            },
            items,
            more_verdicts: more,
            now,
            background_before: None,
            interval: None,
            sign: &crate::store::unsigned,
            next_poll_at: now + jiff::SignedDuration::from_hours(1),
        })
        .unwrap();
}

fn get(path: &str) -> Request<Body> {
    Request::get(path)
        .header(header::HOST, HOST)
        .body(Body::empty())
        .unwrap()
}

fn post(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::HOST, HOST)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(body.to_string()))
        .unwrap()
}

async fn send(
    state: &WebState,
    request: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

fn review_of(store: &Arc<Mutex<Store>>, id: i64) -> Option<Review> {
    store
        .lock()
        .unwrap()
        .get_match(id)
        .unwrap()
        .map(|m| m.review)
}

#[tokio::test]
async fn list_renders_matches_with_hostile_text_inert_and_security_headers() {
    let f = fixture(None, Readiness::DatabaseOnly);
    let (status, headers, body) = send(&f.state, get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Precursor chemicals listed"), "{body}");
    assert!(
        !body.contains("Harbour seizure"),
        "unmatched items are not in the list"
    );
    assert!(!body.contains("<script>alert"), "{body}");
    assert!(body.contains("&lt;script&gt;alert"), "{body}");
    assert!(!body.contains("<img src=x"), "{body}");
    assert!(
        !body.contains("javascript:"),
        "javascript: links are never rendered: {body}"
    );
    assert!(body.contains("href=\"https://news.example/2\""));
    assert!(
        body.contains("Baseline &lt;em&gt;talks&lt;/em&gt;"),
        "baseline shown: {body}"
    );
    assert!(
        body.contains(f.state.csrf_token()),
        "forms carry the CSRF token"
    );
    assert!(body.contains("<script src=\"/static/app.js\" defer>"));
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn list_filters_by_verdict_review_and_date_and_rejects_bad_values() {
    let f = fixture(None, Readiness::DatabaseOnly);
    let (_, _, body) = send(&f.state, get("/?verdict=related")).await;
    assert!(body.contains("Precursor chemicals") && !body.contains("Talks resume"));
    let (_, _, body) = send(&f.state, get("/?review=relevant")).await;
    assert!(body.contains("0 matches"), "{body}");
    let (_, _, body) = send(&f.state, get("/?since=2025-10-09&until=2025-10-09")).await;
    assert!(body.contains("2 matches"), "{body}");
    let (_, _, body) = send(&f.state, get("/?since=2030-01-01")).await;
    assert!(body.contains("0 matches"), "{body}");
    for bad in ["/?verdict=off", "/?review=maybe", "/?since=yesterday"] {
        let (status, _, _) = send(&f.state, get(bad)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn mark_needs_the_csrf_token_and_redirects_back_locally() {
    let f = fixture(None, Readiness::DatabaseOnly);
    for body in ["state=relevant", "state=relevant&csrf=wrong"] {
        let (status, _, _) = send(&f.state, post("/items/1/mark", body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    }
    assert_eq!(review_of(&f.store, 1), Some(Review::Unreviewed));
    let csrf = f.state.csrf_token().to_string();
    let (status, headers, _) = send(
        &f.state,
        post(
            "/items/1/mark",
            &format!("csrf={csrf}&state=irrelevant&back=%2F%3Freview%3Dunreviewed%23item-2"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/?review=unreviewed#item-2");
    assert_eq!(review_of(&f.store, 1), Some(Review::Irrelevant));
    // Undo, with a hostile back URL that must not leave the site.
    let (_, headers, _) = send(
        &f.state,
        post(
            "/items/1/mark",
            &format!("csrf={csrf}&state=unreviewed&back=%2F%2Fevil.example%2F"),
        ),
    )
    .await;
    assert_eq!(headers[header::LOCATION], "/");
    assert_eq!(review_of(&f.store, 1), Some(Review::Unreviewed));
    let (status, _, _) = send(
        &f.state,
        post("/items/999/mark", &format!("csrf={csrf}&state=irrelevant")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = send(
        &f.state,
        post("/items/1/mark", &format!("csrf={csrf}&state=maybe")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn cross_site_posts_and_foreign_hosts_are_refused() {
    let f = fixture(None, Readiness::DatabaseOnly);
    let csrf = f.state.csrf_token().to_string();
    let mut request = post("/items/1/mark", &format!("csrf={csrf}&state=relevant"));
    request
        .headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    let (status, _, _) = send(&f.state, request).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(review_of(&f.store, 1), Some(Review::Unreviewed));

    for host in [
        "evil.example",
        "evil.example:8470",
        "127.0.0.1.evil.example:8470",
    ] {
        let request = Request::get("/")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        let (status, headers, _) = send(&f.state, request).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host}");
        assert!(headers.contains_key("content-security-policy"));
    }
    let no_host = Request::get("/").body(Body::empty()).unwrap();
    assert_eq!(
        send(&f.state, no_host).await.0,
        StatusCode::MISDIRECTED_REQUEST
    );
    for host in [
        "localhost:8470",
        "localhost",
        "127.0.0.1:8470",
        "[::1]:8470",
    ] {
        let request = Request::get("/healthz")
            .header(header::HOST, host)
            .body(Body::empty())
            .unwrap();
        assert_eq!(send(&f.state, request).await.0, StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn search_covers_unmatched_items_which_can_be_marked_relevant_and_undone() {
    let f = fixture(None, Readiness::DatabaseOnly);
    let (status, _, body) = send(&f.state, get("/?q=precursor")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("Harbour seizure") && body.contains("not matched"),
        "{body}"
    );
    assert!(body.contains("Precursor chemicals listed"));
    // Hostile query text is shown escaped and is no FTS syntax error.
    let (status, _, body) = send(&f.state, get("/?q=%22%3Cscript%3E%20AND%20(")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!body.contains("<script>\""), "{body}");

    let csrf = f.state.csrf_token().to_string();
    let (status, _, _) = send(
        &f.state,
        post("/items/3/mark", &format!("csrf={csrf}&state=relevant")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(review_of(&f.store, 3), Some(Review::Relevant));
    let (_, _, body) = send(&f.state, get("/?review=relevant")).await;
    assert!(body.contains("Harbour seizure") && body.contains("marked relevant by a reviewer"));
    send(
        &f.state,
        post("/items/3/mark", &format!("csrf={csrf}&state=unreviewed")),
    )
    .await;
    assert_eq!(
        review_of(&f.store, 3),
        None,
        "undo removes a reviewer-added match"
    );
}

#[tokio::test]
async fn story_feeds_and_atom_pages_escape_everything() {
    let f = fixture(None, Readiness::DatabaseOnly);
    let (status, _, body) = send(&f.state, get("/story")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Bloomberg") && body.contains("top terms: fentanyl &lt;b&gt;"));
    assert!(body.contains("2025-10-09"), "timeline day: {body}");
    assert!(!body.contains("javascript:") && !body.contains("<script>alert"));

    let (status, _, body) = send(&f.state, get("/feeds")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("https://wire.example/feed") && body.contains("ok"));

    let (status, headers, body) = send(&f.state, get("/feed.atom")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    assert!(
        body.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;"),
        "{body}"
    );
    assert!(!body.contains("javascript:") && !body.contains("<script>"));
    assert!(body.contains("href=\"https://news.example/2\""));
    assert_eq!(body.matches("<entry>").count(), 2);
}

#[tokio::test]
async fn probes_static_files_and_unknown_paths() {
    let f = fixture(None, Readiness::DatabaseOnly);
    let (status, _, body) = send(&f.state, get("/healthz")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let (status, _, body) = send(&f.state, get("/readyz")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ready"));
    let (status, headers, body) = send(&f.state, get("/static/app.js")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(body.contains("keydown"));
    let (status, headers, _) = send(&f.state, get("/static/app.css")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(send(&f.state, get("/nope")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn readyz_fails_when_polling_falls_behind() {
    let f = fixture(
        None,
        Readiness::Polling {
            grace: Duration::from_secs(600),
        },
    );
    assert_eq!(send(&f.state, get("/readyz")).await.0, StatusCode::OK);
    // A second feed that has been due since long ago and was never polled.
    f.store
        .lock()
        .unwrap()
        .sync_feeds(&[
            FeedConfig {
                url: "https://wire.example/feed".into(),
                interval: Duration::from_secs(1800),
                title: None,
            },
            FeedConfig {
                url: "https://late.example/feed".into(),
                interval: Duration::from_secs(1800),
                title: None,
            },
        ])
        .unwrap();
    let (status, _, body) = send(&f.state, get("/readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("not ready"));
}

#[tokio::test]
async fn token_guards_pages_by_header_cookie_query_or_login_form() {
    let f = fixture(Some(TOKEN), Readiness::DatabaseOnly);
    let (status, _, body) = send(&f.state, get("/")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("name=\"token\"") && !body.contains("Precursor"));
    assert_eq!(
        send(&f.state, get("/feed.atom")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(send(&f.state, get("/healthz")).await.0, StatusCode::OK);
    assert_eq!(
        send(&f.state, get("/?token=wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );

    let mut bearer = get("/");
    bearer.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {TOKEN}").parse().unwrap(),
    );
    assert_eq!(send(&f.state, bearer).await.0, StatusCode::OK);

    let (status, headers, _) = send(&f.state, get(&format!("/story?token={TOKEN}"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/story");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));

    let mut with_cookie = get("/");
    with_cookie.headers_mut().insert(
        header::COOKIE,
        format!("other=1; {TOKEN_COOKIE}={TOKEN}").parse().unwrap(),
    );
    assert_eq!(send(&f.state, with_cookie).await.0, StatusCode::OK);

    let csrf = f.state.csrf_token().to_string();
    let (status, _, _) = send(&f.state, post("/login", &format!("csrf={csrf}&token=nope"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = send(&f.state, post("/login", &format!("token={TOKEN}"))).await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "login needs the CSRF token too"
    );
    let (status, headers, _) = send(
        &f.state,
        post("/login", &format!("csrf={csrf}&token={TOKEN}")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .starts_with(TOKEN_COOKIE)
    );
    // Without the token a mark is refused before the handler runs.
    let (status, _, _) = send(
        &f.state,
        post("/items/1/mark", &format!("csrf={csrf}&state=relevant")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(review_of(&f.store, 1), Some(Review::Unreviewed));
}

#[test]
fn off_loopback_any_host_is_accepted_because_the_token_is_required() {
    assert!(security::allowed_hosts("0.0.0.0:8470".parse().unwrap()).is_none());
    let hosts = security::allowed_hosts("127.0.0.1:9000".parse().unwrap()).unwrap();
    assert!(hosts.contains(&"localhost:9000".to_string()));
    assert!(!hosts.iter().any(|h| h.contains("8470")));
}

#[test]
fn safe_links_are_http_only() {
    assert_eq!(
        http_link(Some("https://a.example/x")).as_deref(),
        Some("https://a.example/x")
    );
    for bad in [
        "javascript:alert(1)",
        "JAVASCRIPT:alert(1)",
        " javascript:x",
        "data:text/html,x",
        "/relative",
        "vbscript:x",
    ] {
        assert_eq!(http_link(Some(bad)), None, "{bad}");
    }
}

#[tokio::test]
async fn list_shows_near_duplicate_groups_with_outlets_escaped() {
    let f = fixture(None, Readiness::DatabaseOnly);
    {
        let mut store = f.store.lock().unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let title = "China and US agree to curb fentanyl precursor exports";
        let mut copy = item("5", title, "", "https://daily.example/5");
        copy.source = Some("Daily <i>".into());
        copy.published = Some(Timestamp::from_second(1_760_003_600).unwrap());
        let items = vec![
            (
                item("4", title, "", "https://news.example/4"),
                verdict(VerdictKind::FollowUp),
            ),
            (copy, verdict(VerdictKind::FollowUp)),
        ];
        record(&mut store, feed_id, &items, &[]);
    }
    let (_, _, body) = send(&f.state, get("/")).await;
    assert!(body.contains("Also reported by: Daily &lt;i&gt;"), "{body}");
    assert!(
        body.contains("Copy or rewrite of an earlier report; group: Wire &lt;b&gt;"),
        "{body}"
    );
    assert!(!body.contains("Daily <i>"), "{body}");
}

#[tokio::test]
async fn story_page_shows_how_review_changed_the_profile() {
    let f = fixture(None, Readiness::DatabaseOnly);
    let seeds = crate::story::seeds::load_seed_files(crate::bundled::SEED_FILES).unwrap();
    let profile = crate::story::Profile::build(seeds, &crate::story::Tuning::default()).unwrap();
    let story = crate::pipeline::Story::new(STORY.into(), profile);
    let state = WebState::new(
        Arc::clone(&f.store),
        StoryViews::new(vec![StoryView::from_story(&story)]),
        WebOptions {
            listen: HOST.parse().unwrap(),
            token: None,
            timezone: jiff::tz::TimeZone::UTC,
            readiness: Readiness::DatabaseOnly,
        },
    )
    .unwrap();
    let (_, _, body) = send(&state, get("/story")).await;
    assert!(body.contains("How review changed the profile"), "{body}");
    assert!(body.contains("No items marked yet"), "{body}");
    f.store
        .lock()
        .unwrap()
        .mark(2, Review::Irrelevant, Timestamp::now())
        .unwrap();
    let (_, _, body) = send(&state, get("/story")).await;
    assert!(
        body.contains("learned from 1 review (0 relevant, 1 irrelevant): −"),
        "{body}"
    );
    assert!(body.contains("After review, top terms:"), "{body}");
    // The table of moved terms: an irrelevant mark only lowers the terms it taught.
    let els = elements(&body);
    assert!(
        els.iter().any(|e| attr(e, "class") == Some("moved")),
        "{body}"
    );
    assert!(body.contains("<th>Learned weight</th>"), "{body}");
    let changes: Vec<&str> = els
        .iter()
        .filter_map(|e| attr(e, "class"))
        .filter(|c| *c == "up" || *c == "down")
        .collect();
    assert!(
        !changes.is_empty() && changes.iter().all(|c| *c == "down"),
        "{changes:?}"
    );
}

/// The elements of a page in document order, as (name, attributes), after checking that the
/// page is well formed the way maud writes it: every element closed in order (void elements
/// excepted) and no attribute twice on one element (browsers drop the second, e.g. a badge's
/// colour class). Panics on the first fault.
fn elements(html: &str) -> Vec<(String, Vec<(String, String)>)> {
    const VOID: &[&str] = &["meta", "link", "input", "br", "img", "hr"];
    let mut out = Vec::new();
    let mut open: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start + 1..];
        if let Some(tail) = rest.strip_prefix('!') {
            rest = &tail[tail.find('>').expect("unclosed <!") + 1..];
            continue;
        }
        if let Some(tail) = rest.strip_prefix('/') {
            let end = tail.find('>').expect("unclosed end tag");
            let name = &tail[..end];
            assert_eq!(
                open.pop().as_deref(),
                Some(name),
                "</{name}> closes the wrong element in {html}"
            );
            rest = &tail[end + 1..];
            continue;
        }
        let name_end = rest
            .find(|c: char| c.is_whitespace() || c == '>')
            .expect("unclosed tag");
        let name = rest[..name_end].to_string();
        rest = &rest[name_end..];
        let mut attrs: Vec<(String, String)> = Vec::new();
        loop {
            rest = rest.trim_start();
            if let Some(tail) = rest.strip_prefix('>') {
                rest = tail;
                break;
            }
            let key_end = rest
                .find(|c: char| c == '=' || c == '>' || c.is_whitespace())
                .expect("unclosed attribute");
            let key = rest[..key_end].to_string();
            rest = &rest[key_end..];
            let value = match rest.strip_prefix("=\"") {
                Some(tail) => {
                    let end = tail.find('"').expect("unclosed attribute value");
                    rest = &tail[end + 1..];
                    tail[..end].to_string()
                }
                None => String::new(),
            };
            assert!(
                !attrs.iter().any(|(k, _)| *k == key),
                "<{name}> has {key} twice in {html}"
            );
            attrs.push((key, value));
        }
        if !VOID.contains(&name.as_str()) {
            open.push(name.clone());
        }
        out.push((name, attrs));
    }
    assert!(open.is_empty(), "unclosed elements {open:?} in {html}");
    out
}

fn attr<'a>(element: &'a (String, Vec<(String, String)>), key: &str) -> Option<&'a str> {
    element
        .1
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn review_in(store: &Arc<Mutex<Store>>, id: i64, story: &str) -> Option<Review> {
    store
        .lock()
        .unwrap()
        .list_matches(&MatchFilter {
            story: Some(story.into()),
            ..MatchFilter::default()
        })
        .unwrap()
        .into_iter()
        .find(|m| m.id == id)
        .map(|m| m.review)
}

#[tokio::test]
async fn every_page_is_well_formed_with_unique_ids_and_classed_badges() {
    for f in [fixture(None, Readiness::DatabaseOnly), two_stories()] {
        f.store
            .lock()
            .unwrap()
            .mark(2, Review::Relevant, Timestamp::now())
            .unwrap();
        for path in [
            "/".to_string(),
            "/?q=precursor".to_string(),
            format!("/?q=precursor&story={STORY}"),
            "/story".to_string(),
            pages::story_url(STORY),
            "/feeds".to_string(),
            "/login".to_string(),
            "/nope".to_string(),
            "/?review=maybe".to_string(),
        ] {
            let (_, _, body) = send(&f.state, get(&path)).await;
            let els = elements(&body);
            let ids: Vec<&str> = els.iter().filter_map(|e| attr(e, "id")).collect();
            let mut unique = ids.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(ids.len(), unique.len(), "{path}: ids repeat: {ids:?}");
            for e in &els {
                if let Some(class) = attr(e, "class")
                    && class.split(' ').any(|c| c == "badge")
                {
                    assert!(
                        class.split(' ').count() == 2,
                        "{path}: a badge without its value's class: {class:?}"
                    );
                }
            }
        }
    }
    let f = fixture(None, Readiness::DatabaseOnly);
    let (_, _, body) = send(&f.state, get("/")).await;
    assert!(
        body.contains("<span class=\"badge follow_up\">follow-up</span>")
            && body.contains("<span class=\"badge unreviewed\">unreviewed</span>"),
        "{body}"
    );
}

#[tokio::test]
async fn several_stories_filter_the_list_and_mark_the_item_story_pair_clicked() {
    let f = two_stories();
    let (_, _, body) = send(&f.state, get("/")).await;
    // Item 2 matched both stories: two rows, each with its own anchor and story in its forms.
    assert!(body.contains("4 matches"), "{body}");
    let (mine, other) = (anchor(2, Some(STORY)), anchor(2, Some(OTHER)));
    assert_ne!(mine, other);
    let els = elements(&body);
    for id in [&mine, &other] {
        assert!(els.iter().any(|e| attr(e, "id") == Some(id)), "{id}");
    }
    assert!(
        body.contains("name=\"story\" value=\"tariffs &amp; trade\""),
        "{body}"
    );
    assert!(
        body.contains("<option value=\"tariffs &amp; trade\">"),
        "{body}"
    );
    assert!(
        body.contains(">Stories</a>"),
        "the nav leads to the chooser"
    );

    let (_, _, body) = send(&f.state, get("/?story=tariffs+%26+trade")).await;
    assert!(body.contains("2 matches"), "{body}");
    assert!(body.contains("Harbour seizure") && !body.contains("Talks resume"));
    assert!(body.contains("<option value=\"tariffs &amp; trade\" selected>"));

    let csrf = f.state.csrf_token().to_string();
    let form = |id: i64, state: &str, story: &str| {
        post(
            &format!("/items/{id}/mark"),
            &format!(
                "csrf={csrf}&state={state}&story={}",
                url::form_urlencoded::byte_serialize(story.as_bytes()).collect::<String>()
            ),
        )
    };
    let (status, _, _) = send(&f.state, form(2, "irrelevant", OTHER)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(review_in(&f.store, 2, OTHER), Some(Review::Irrelevant));
    assert_eq!(review_in(&f.store, 2, STORY), Some(Review::Unreviewed));
    // Item 1 is a match of the first story only; marking it relevant to the other adds it there.
    let (status, _, _) = send(&f.state, form(1, "relevant", OTHER)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(review_in(&f.store, 1, OTHER), Some(Review::Relevant));
    assert_eq!(review_in(&f.store, 1, STORY), Some(Review::Unreviewed));
    // No story named: refused rather than guessed; an unknown story gains no match.
    let (status, _, _) = send(
        &f.state,
        post("/items/3/mark", &format!("csrf={csrf}&state=relevant")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = send(&f.state, form(1, "relevant", "nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(review_in(&f.store, 1, "nope"), None);

    // A story page for each story, and a chooser.
    let (_, _, body) = send(&f.state, get("/story")).await;
    assert!(
        body.contains(&pages::story_url(OTHER).replace('&', "&amp;")),
        "{body}"
    );
    let (status, _, body) = send(&f.state, get(&pages::story_url(OTHER))).await;
    assert_eq!(status, StatusCode::OK);
    // Its timeline: item 1 marked relevant to it; item 2 it matched, but marked irrelevant.
    assert!(
        body.contains("top terms: tariff") && body.contains("Talks resume"),
        "{body}"
    );
    assert!(!body.contains("Precursor chemicals"), "{body}");
    assert!(
        !body.contains("Bloomberg"),
        "the other story's baselines: {body}"
    );
    let (status, _, _) = send(&f.state, get("/story?name=nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn search_honours_the_story_verdict_review_and_date_filters() {
    let f = two_stories();
    let count = |body: &str| elements(body).iter().filter(|e| e.0 == "article").count();
    // "precursor": item 2 (matched by both stories) and item 3 (matched by the other only).
    let (_, _, body) = send(&f.state, get("/?q=precursor")).await;
    assert_eq!(count(&body), 3, "{body}");
    let (_, _, body) = send(&f.state, get(&format!("/?q=precursor&story={STORY}"))).await;
    assert_eq!(count(&body), 2, "{body}");
    assert!(
        body.contains("not matched"),
        "item 3 is not matched in this story"
    );
    assert!(
        body.contains(&format!("name=\"story\" value=\"{STORY}\"")),
        "and can be marked relevant to it: {body}"
    );
    let (_, _, body) = send(&f.state, get("/?q=precursor&verdict=follow_up")).await;
    assert_eq!(count(&body), 1, "{body}");
    assert!(body.contains("Precursor chemicals listed"));
    f.store
        .lock()
        .unwrap()
        .mark_for_story(3, OTHER, Review::Irrelevant, Timestamp::now())
        .unwrap();
    let (_, _, body) = send(&f.state, get("/?q=precursor&review=irrelevant")).await;
    assert_eq!(count(&body), 1, "{body}");
    assert!(body.contains("Harbour seizure"));
    let (_, _, body) = send(&f.state, get("/?q=precursor&since=2030-01-01")).await;
    assert_eq!(count(&body), 0, "{body}");
    let (_, _, body) = send(&f.state, get("/?q=precursor&until=2025-10-09")).await;
    assert_eq!(count(&body), 3, "{body}");
    let (status, _, _) = send(&f.state, get("/?q=precursor&verdict=off")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_list_and_search_results_page_and_keep_the_filters() {
    let f = fixture(None, Readiness::DatabaseOnly);
    {
        let mut store = f.store.lock().unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let items: Vec<_> = (0..PAGE_SIZE + 5)
            .map(|n| {
                let mut it = item(
                    &format!("p{n}"),
                    &format!("Paged item {n:03}"),
                    "",
                    "https://news.example/p",
                );
                it.published = Some(Timestamp::from_second(1_760_100_000 + n as i64).unwrap());
                (it, verdict(VerdictKind::FollowUp))
            })
            .collect();
        record(&mut store, feed_id, &items, &[]);
    }
    let titles = |body: &str| -> Vec<String> {
        body.match_indices("Paged item ")
            .map(|(at, _)| body[at..at + 14].to_string())
            .collect()
    };
    // Item 1 is a follow-up too: PAGE_SIZE + 6 rows, newest first.
    let (_, _, first) = send(&f.state, get("/?verdict=follow_up")).await;
    let els = elements(&first);
    assert_eq!(els.iter().filter(|e| e.0 == "article").count(), PAGE_SIZE);
    assert!(first.contains(&format!("matches 1–{PAGE_SIZE}")), "{first}");
    assert!(
        first.contains("rel=\"next\" href=\"/?verdict=follow_up&amp;page=2\""),
        "{first}"
    );
    assert!(!first.contains("rel=\"prev\""));
    assert_eq!(
        titles(&first)[0],
        format!("Paged item {:03}", PAGE_SIZE + 4)
    );
    let (_, _, second) = send(&f.state, get("/?verdict=follow_up&page=2")).await;
    let els = elements(&second);
    assert_eq!(els.iter().filter(|e| e.0 == "article").count(), 6);
    assert!(second.contains("rel=\"prev\" href=\"/?verdict=follow_up\""));
    assert!(!second.contains("rel=\"next\""));
    assert!(second.contains("Talks resume"), "the oldest is last");
    let (a, b) = (titles(&first), titles(&second));
    assert!(a.iter().all(|t| !b.contains(t)), "no row on both pages");
    assert_eq!(a.len() + b.len(), PAGE_SIZE + 5);
    // A mark on page 2 comes back to page 2.
    assert!(
        second.contains("name=\"back\" value=\"/?verdict=follow_up&amp;page=2#item-"),
        "{second}"
    );
    let (_, _, results) = send(&f.state, get("/?q=paged&page=2")).await;
    assert_eq!(titles(&results).len(), 5, "{results}");
    assert!(results.contains("rel=\"prev\" href=\"/?q=paged\""));
    for bad in ["/?page=0", "/?page=x", "/?page=-1"] {
        assert_eq!(
            send(&f.state, get(bad)).await.0,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn token_login_keeps_the_query_and_never_redirects_off_the_site() {
    let f = fixture(Some(TOKEN), Readiness::DatabaseOnly);
    let (status, headers, _) = send(
        &f.state,
        get(&format!(
            "/?review=unreviewed&token={TOKEN}&verdict=related"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[header::LOCATION],
        "/?review=unreviewed&verdict=related"
    );
    // Without the token the login form remembers the page asked for.
    let (status, _, body) = send(&f.state, get("/?review=unreviewed")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        body.contains("name=\"next\" value=\"/?review=unreviewed\""),
        "{body}"
    );
    let csrf = f.state.csrf_token().to_string();
    let (status, headers, _) = send(
        &f.state,
        post(
            "/login",
            &format!("csrf={csrf}&token={TOKEN}&next=%2F%3Freview%3Dunreviewed"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "/?review=unreviewed");
    for hostile in [
        "https%3A%2F%2Fevil.example%2F",
        "%2F%2Fevil.example%2F",
        "%2F%5Cevil.example",
        "%2F%0D%0ASet-Cookie%3A%20x%3D1",
        "javascript%3Aalert(1)",
    ] {
        let (status, headers, _) = send(
            &f.state,
            post(
                "/login",
                &format!("csrf={csrf}&token={TOKEN}&next={hostile}"),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{hostile}");
        assert_eq!(headers[header::LOCATION], "/", "{hostile}");
        let (_, _, body) = send(&f.state, get(&format!("/login?next={hostile}"))).await;
        assert!(
            body.contains("name=\"next\" value=\"/\""),
            "{hostile}: {body}"
        );
    }
}

#[tokio::test]
async fn metrics_and_the_feeds_page_show_the_database_with_feed_text_inert() {
    let f = fixture(None, Readiness::DatabaseOnly);
    let (status, headers, body) = send(&f.state, get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    assert!(body.lines().any(|l| l == "storywatch_items 3"), "{body}");
    assert!(body.lines().any(|l| l == "storywatch_feeds 1"), "{body}");
    {
        let mut store = f.store.lock().unwrap();
        let feed_id = store.active_feeds().unwrap()[0].id;
        let now = Timestamp::now();
        store
            .record_failure(
                feed_id,
                "http_status",
                "<script>alert(3)</script> 500 from the server",
                now,
                now,
            )
            .unwrap();
    }
    let (status, _, body) = send(&f.state, get("/feeds")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("failing (http_status, 1 in a row)"), "{body}");
    assert!(
        body.contains("&lt;script&gt;alert(3)&lt;/script&gt;") && !body.contains("<script>alert"),
        "{body}"
    );
    elements(&body);
    let (_, _, body) = send(&f.state, get("/metrics")).await;
    assert!(
        body.lines().any(|l| l == "storywatch_feeds_failing 1"),
        "{body}"
    );
}

#[tokio::test]
async fn a_reload_shows_the_new_stories_without_a_restart() {
    let f = fixture(None, Readiness::DatabaseOnly);
    let (_, _, body) = send(&f.state, get("/story")).await;
    assert!(body.contains("Bloomberg"), "{body}");
    let seeds = crate::story::seeds::load_seed_files(crate::bundled::SEED_FILES).unwrap();
    let profile = crate::story::Profile::build(seeds, &crate::story::Tuning::default()).unwrap();
    let stories = crate::pipeline::Stories::new(vec![
        crate::pipeline::Story::new("renamed".into(), profile.clone()),
        crate::pipeline::Story::new(OTHER.into(), profile),
    ])
    .unwrap();
    f.state.inner.stories.replace(&stories);
    let (_, _, body) = send(&f.state, get("/story")).await;
    assert!(
        body.contains(">renamed</a>") && body.contains(">tariffs &amp; trade</a>"),
        "{body}"
    );
    let (status, _, _) = send(&f.state, get(&pages::story_url("renamed"))).await;
    assert_eq!(status, StatusCode::OK);
}
