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
use crate::store::{FetchedPoll, Store};
use crate::story::{BaselineArticle, Verdict, VerdictKind};

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
            items: &items,
            more_verdicts: &[],
            now,
            background_before: None,
            interval: None,
            sign: &crate::store::unsigned,
            next_poll_at: now + jiff::SignedDuration::from_hours(1),
        })
        .unwrap();
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
    let state = WebState::new(
        Arc::clone(&store),
        story,
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
                items: &items,
                more_verdicts: &[],
                now,
                next_poll_at: now,
                background_before: None,
                interval: None,
                sign: &crate::store::unsigned,
            })
            .unwrap();
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
        StoryView::from_story(&story),
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
}
