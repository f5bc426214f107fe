//! The review page: a small local web server beside the daemon loop (or alone with
//! `storywatch serve`). Server-rendered HTML that works without JavaScript; the shortcut
//! script and the stylesheet are compiled into the binary, so the page works offline.
//!
//! Security model: loopback by default with a `Host` check (DNS rebinding), an access token
//! when configured (required off loopback), a per-process CSRF token in every form, cross-site
//! POSTs refused, strict CSP and friends on every answer, feed text escaped by maud and feed
//! links rendered only when they are http(s).

mod pages;
mod security;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::{self, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;
use tracing::{error, info};

use crate::digest::atom::atom_feed;
pub use security::{TOKEN_COOKIE, random_token};

use crate::daemon::Shutdown;
use crate::pipeline::{Stories, Story};
use crate::store::{MatchFilter, Review, Store, StoreError};
use crate::story::{BaselineArticle, VerdictKind};

const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");

/// How many rows one page of the list or of search results shows.
pub const PAGE_SIZE: usize = 50;

/// How many matches the Atom feed carries.
const FEED_LIMIT: usize = 200;

/// A problem starting or running the web server.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The listen address could not be bound.
    #[error(
        "cannot listen on {addr} for the review page: {source}; pick another [web] listen port or stop what uses it"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The system's random source failed (needed for the CSRF token).
    #[error("cannot get random bytes for the CSRF token: {0}")]
    Random(String),
    /// The server stopped with an error.
    #[error("review page server failed: {0}")]
    Serve(std::io::Error),
}

/// What the pages show of one story. The daemon replaces the set on reload (see
/// [`StoryViews`]); clones of the [`Story`] inside share what it learned.
#[derive(Debug, Clone)]
pub struct StoryView {
    /// The story's name (also the key its matches are stored under).
    pub name: String,
    /// The baseline articles.
    pub baselines: Vec<BaselineArticle>,
    /// The profile's printable summary.
    pub summary: String,
    /// The story itself, to show what review taught it (`None` shows no learning section).
    pub story: Option<Story>,
}

impl StoryView {
    /// The view of a loaded story.
    pub fn from_story(story: &Story) -> StoryView {
        StoryView {
            name: story.name.clone(),
            baselines: story.profile.baselines.clone(),
            summary: story.profile.summary(),
            story: Some(story.clone()),
        }
    }
}

/// The stories the pages show, in config order, shared with the daemon: a reload (SIGHUP)
/// rebuilds the stories and [`StoryViews::replace`] hands them to the page without a restart.
#[derive(Debug, Clone)]
pub struct StoryViews(Arc<RwLock<Arc<[StoryView]>>>);

impl StoryViews {
    /// A set of views (the pages need at least one to mark items by hand).
    pub fn new(views: Vec<StoryView>) -> StoryViews {
        StoryViews(Arc::new(RwLock::new(views.into())))
    }

    /// The views of every loaded story.
    pub fn of(stories: &Stories) -> StoryViews {
        StoryViews::new(stories.iter().map(StoryView::from_story).collect())
    }

    /// Shows `stories` from the next request on.
    pub fn replace(&self, stories: &Stories) {
        let views: Arc<[StoryView]> = stories.iter().map(StoryView::from_story).collect();
        // A panic while swapping leaves the old or the new list, both usable.
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = views;
    }

    /// The stories as of now (a request keeps its snapshot while a reload swaps them).
    pub fn current(&self) -> Arc<[StoryView]> {
        Arc::clone(&self.0.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// What `/readyz` requires besides a database that answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// No polling here (`storywatch serve`): the database is enough.
    DatabaseOnly,
    /// The daemon polls: no active feed may be overdue by more than `grace`.
    Polling {
        /// How late a due feed may be before the service counts as not ready.
        grace: Duration,
    },
}

/// Settings for the web state besides the store and story.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// The address actually bound (decides the allowed `Host` values).
    pub listen: SocketAddr,
    /// The access token, when required.
    pub token: Option<String>,
    /// Time zone for displayed times.
    pub timezone: TimeZone,
    /// What `/readyz` checks.
    pub readiness: Readiness,
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct WebState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Mutex<Store>>,
    stories: StoryViews,
    csrf: String,
    token: Option<String>,
    allowed_hosts: Option<Vec<String>>,
    timezone: TimeZone,
    readiness: Readiness,
}

impl WebState {
    /// State for a server over `store` showing `stories`, with a fresh random CSRF token.
    pub fn new(
        store: Arc<Mutex<Store>>,
        stories: StoryViews,
        options: WebOptions,
    ) -> Result<WebState, WebError> {
        let csrf = random_token().map_err(|err| WebError::Random(err.to_string()))?;
        Ok(WebState {
            inner: Arc::new(Inner {
                store,
                stories,
                csrf,
                token: options.token,
                allowed_hosts: security::allowed_hosts(options.listen),
                timezone: options.timezone,
                readiness: options.readiness,
            }),
        })
    }

    /// This process's CSRF token (tests post with it).
    pub fn csrf_token(&self) -> &str {
        &self.inner.csrf
    }
}

/// The routes, with the security guard around all of them.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(list))
        .route("/items/{id}/mark", post(mark))
        .route("/story", get(story))
        .route("/feeds", get(feeds))
        .route("/feed.atom", get(feed_atom))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/login", get(login_form).post(login))
        .route("/static/app.js", get(app_js))
        .route("/static/app.css", get(app_css))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .with_state(state)
}

/// Binds the listen address (before anything else starts, so a busy port stops start-up).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, WebError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Bind { addr, source })
}

/// Serves `state` on `listener` until `shutdown`; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    mut shutdown: Shutdown,
) -> Result<(), WebError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.requested().await })
        .await
        .map_err(WebError::Serve)
}

/// Starts the review page for the daemon when `[web]` is configured: binds now, serves in a
/// task until `shutdown`, showing `stories` (which the daemon replaces on reload). `None`
/// when the section is absent.
pub async fn start_for_daemon(
    config: &crate::config::Config,
    stories: &StoryViews,
    store: &Arc<Mutex<Store>>,
    shutdown: Shutdown,
) -> Result<Option<tokio::task::JoinHandle<()>>, WebError> {
    let Some(web) = &config.web else {
        return Ok(None);
    };
    let listener = bind(web.listen).await?;
    let listen = listener.local_addr().map_err(WebError::Serve)?;
    let state = WebState::new(
        Arc::clone(store),
        stories.clone(),
        WebOptions {
            listen,
            token: web.token.clone(),
            timezone: config.digest.timezone.clone(),
            readiness: Readiness::Polling {
                grace: Duration::from_secs(10 * 60),
            },
        },
    )?;
    info!(url = %format!("http://{listen}/"), "review page listening");
    Ok(Some(tokio::spawn(async move {
        if let Err(err) = serve(listener, state, shutdown).await {
            error!(error = %err, "review page stopped");
        }
    })))
}

// ---------------------------------------------------------------------------------------------
// Handlers.

/// A failure inside a handler, shown as a short page (details go to the log).
struct PageError(StatusCode, String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.0.canonical_reason().unwrap_or("Error");
        (
            self.0,
            Html(pages::error_page(title, &self.1).into_string()),
        )
            .into_response()
    }
}

impl From<StoreError> for PageError {
    fn from(err: StoreError) -> PageError {
        error!(error = %err, "database error in a request");
        PageError(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The database could not answer; see storywatch's log.".into(),
        )
    }
}

fn bad_request(message: impl Into<String>) -> PageError {
    PageError(StatusCode::BAD_REQUEST, message.into())
}

/// Runs a store call on the blocking pool: rusqlite is synchronous and the daemon shares it.
async fn with_store<T: Send + 'static>(
    state: &WebState,
    work: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, PageError> {
    let store = Arc::clone(&state.inner.store);
    let joined = tokio::task::spawn_blocking(move || {
        let mut guard = store.lock().map_err(|_| {
            PageError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "database lock poisoned by an earlier panic; restart storywatch".into(),
            )
        })?;
        work(&mut guard).map_err(PageError::from)
    })
    .await;
    joined.unwrap_or_else(|err| {
        Err(PageError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("request task failed: {err}"),
        ))
    })
}

/// The list page's query string; every field is optional and may be empty.
#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    story: Option<String>,
    verdict: Option<String>,
    review: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page: Option<String>,
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

fn parse_review(text: &str) -> Option<Review> {
    match text {
        "unreviewed" => Some(Review::Unreviewed),
        "relevant" => Some(Review::Relevant),
        "irrelevant" => Some(Review::Irrelevant),
        _ => None,
    }
}

fn parse_verdict(text: &str) -> Option<VerdictKind> {
    match text {
        "follow_up" => Some(VerdictKind::FollowUp),
        "re_report" => Some(VerdictKind::ReReport),
        "related" => Some(VerdictKind::Related),
        _ => None,
    }
}

/// The start of `date` (YYYY-MM-DD) in `zone`, plus `days`.
fn day_start(text: &str, zone: &TimeZone, days: i64) -> Option<Timestamp> {
    let date: jiff::civil::Date = text.parse().ok()?;
    let date = date.checked_add(jiff::Span::new().days(days)).ok()?;
    date.to_zoned(zone.clone()).ok().map(|z| z.timestamp())
}

/// The deepest page served: far beyond any real list, and small enough that the offset never
/// overflows.
const MAX_PAGE: usize = 1_000_000;

/// The store filter and the echoed form values of a list query; a bad value is a 400 that
/// says what is accepted.
fn list_filter(
    query: &ListQuery,
    zone: &TimeZone,
) -> Result<(MatchFilter, pages::Filters), PageError> {
    let page = match non_empty(&query.page) {
        Some(p) => p
            .parse::<usize>()
            .ok()
            .filter(|p| (1..=MAX_PAGE).contains(p))
            .ok_or_else(|| bad_request(format!("page must be a number from 1 to {MAX_PAGE}")))?,
        None => 1,
    };
    // One row more than a page tells whether there is a next page.
    let mut filter = MatchFilter {
        story: non_empty(&query.story).map(str::to_string),
        limit: Some(PAGE_SIZE + 1),
        offset: Some((page - 1) * PAGE_SIZE),
        ..MatchFilter::default()
    };
    if let Some(v) = non_empty(&query.verdict) {
        filter.verdict = Some(
            parse_verdict(v)
                .ok_or_else(|| bad_request("verdict must be follow_up, re_report or related"))?,
        );
    }
    if let Some(r) = non_empty(&query.review) {
        filter.review = Some(
            parse_review(r)
                .ok_or_else(|| bad_request("review must be unreviewed, relevant or irrelevant"))?,
        );
    }
    if let Some(d) = non_empty(&query.since) {
        filter.since = Some(
            day_start(d, zone, 0).ok_or_else(|| bad_request("from must be a date YYYY-MM-DD"))?,
        );
    }
    if let Some(d) = non_empty(&query.until) {
        filter.until =
            Some(day_start(d, zone, 1).ok_or_else(|| bad_request("to must be a date YYYY-MM-DD"))?);
    }
    let echo = |v: &Option<String>| non_empty(v).unwrap_or_default().to_string();
    let filters = pages::Filters {
        q: echo(&query.q),
        story: echo(&query.story),
        verdict: echo(&query.verdict),
        review: echo(&query.review),
        since: echo(&query.since),
        until: echo(&query.until),
        page,
        more: false,
    };
    Ok((filter, filters))
}

async fn list(
    State(state): State<WebState>,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, PageError> {
    let zone = &state.inner.timezone;
    let (filter, mut filters) = list_filter(&query, zone)?;
    let search = non_empty(&query.q).map(str::to_string);
    let (mut matches, mut hits) = with_store(&state, move |s| match search {
        Some(q) => Ok((Vec::new(), Some(s.search_items(&q, &filter)?))),
        None => Ok((s.list_matches(&filter)?, None)),
    })
    .await?;
    let shown = hits.as_ref().map_or(matches.len(), Vec::len);
    filters.more = shown > PAGE_SIZE;
    matches.truncate(PAGE_SIZE);
    if let Some(hits) = hits.as_mut() {
        hits.truncate(PAGE_SIZE);
    }
    let back = filters.url(filters.page);
    let stories = state.inner.stories.current();
    let cx = pages::CardContext {
        csrf: &state.inner.csrf,
        back: &back,
        stories: &stories,
        zone,
    };
    Ok(Html(
        pages::list_page(&filters, &matches, hits.as_deref(), &cx).into_string(),
    ))
}

/// A mark button's form.
#[derive(Debug, Deserialize)]
struct MarkForm {
    csrf: Option<String>,
    state: Option<String>,
    back: Option<String>,
    /// The story of the row the button belongs to (optional with one story).
    story: Option<String>,
}

async fn mark(
    State(state): State<WebState>,
    Path(id): Path<i64>,
    Form(form): Form<MarkForm>,
) -> Result<Response, PageError> {
    if !security::csrf_ok(&state, form.csrf.as_deref()) {
        return Err(PageError(
            StatusCode::FORBIDDEN,
            "The form's CSRF token is missing or stale (storywatch restarted?); reload the page and try again.".into(),
        ));
    }
    let review = form
        .state
        .as_deref()
        .and_then(parse_review)
        .ok_or_else(|| bad_request("state must be relevant, irrelevant or unreviewed"))?;
    let stories = state.inner.stories.current();
    // Each story learns from its own marks, so a mark is for one (item, story) pair.
    let story = match (non_empty(&form.story), &stories[..]) {
        (Some(name), _) => name.to_string(),
        (None, [only]) => only.name.clone(),
        (None, _) => {
            return Err(bad_request(
                "Several stories are followed: the form must say which story the mark is for.",
            ));
        }
    };
    // Only a followed story may gain a match by hand; old stories' matches can still be marked.
    let followed = stories.iter().any(|v| v.name == story);
    let now = Timestamp::now();
    let key = story.clone();
    let found = with_store(&state, move |s| {
        if s.mark_for_story(id, &key, review, now)? {
            return Ok(true);
        }
        // An item the matcher passed over: marking it relevant adds it as a match.
        if review == Review::Relevant && followed {
            return s.mark_item_relevant(id, &key, now);
        }
        Ok(false)
    })
    .await?;
    if !found {
        return Err(PageError(
            StatusCode::NOT_FOUND,
            format!("No stored item #{id} to mark for the story {story:?}."),
        ));
    }
    info!(item = id, story = %story, review = review.as_str(), "marked");
    Ok(Redirect::to(security::local_path(form.back.as_deref())).into_response())
}

/// The story page's query: which story (optional with one).
#[derive(Debug, Default, Deserialize)]
struct StoryQuery {
    name: Option<String>,
}

async fn story(
    State(state): State<WebState>,
    Query(query): Query<StoryQuery>,
) -> Result<Html<String>, PageError> {
    let stories = state.inner.stories.current();
    let view = match (non_empty(&query.name), &stories[..]) {
        (Some(name), _) => stories
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| PageError(StatusCode::NOT_FOUND, format!("No story named {name:?}.")))?
            .clone(),
        (None, [only]) => only.clone(),
        (None, _) => return Ok(Html(pages::story_chooser(&stories).into_string())),
    };
    let name = view.name.clone();
    let learner = view.story.clone();
    let (timeline, learning) = with_store(&state, move |s| {
        // What review taught: re-learned here when marks changed since the last look.
        let learning = match &learner {
            Some(story) => {
                story.learn_from(s)?;
                pages::Learning::of(story)
            }
            None => None,
        };
        let all = s.list_matches(&MatchFilter {
            story: Some(name),
            ..MatchFilter::default()
        })?;
        let timeline = all
            .into_iter()
            .filter(|m| {
                m.review == Review::Relevant
                    || (m.verdict == VerdictKind::FollowUp && m.review != Review::Irrelevant)
            })
            .collect::<Vec<_>>();
        Ok((timeline, learning))
    })
    .await?;
    Ok(Html(
        pages::story_page(
            &view,
            &stories,
            learning.as_ref(),
            &timeline,
            &state.inner.timezone,
        )
        .into_string(),
    ))
}

async fn feeds(State(state): State<WebState>) -> Result<Html<String>, PageError> {
    let feeds = with_store(&state, |s| s.feed_statuses()).await?;
    let stories = state.inner.stories.current();
    Ok(Html(
        pages::feeds_page(&stories, &feeds, &state.inner.timezone).into_string(),
    ))
}

async fn feed_atom(State(state): State<WebState>) -> Result<Response, PageError> {
    let matches = with_store(&state, |s| {
        let all = s.list_matches(&MatchFilter {
            limit: Some(FEED_LIMIT),
            ..MatchFilter::default()
        })?;
        Ok(all
            .into_iter()
            .filter(|m| m.review != Review::Irrelevant)
            .collect::<Vec<_>>())
    })
    .await?;
    let stories = state.inner.stories.current();
    let names: Vec<&str> = stories.iter().map(|s| s.name.as_str()).collect();
    let body = atom_feed(&names, &matches, Timestamp::now());
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/atom+xml; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}

async fn healthz() -> &'static str {
    "ok"
}

/// Prometheus text format: this process's counters and the database's totals.
async fn metrics(State(state): State<WebState>) -> Result<Response, PageError> {
    let stored = with_store(&state, |s| s.stored_counts()).await?;
    let body = crate::metrics::global().render(&stored);
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response())
}

async fn readyz(State(state): State<WebState>) -> Response {
    let lag = match with_store(&state, |s| s.poll_lag()).await {
        Ok(lag) => lag,
        Err(PageError(_, message)) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {message}"),
            )
                .into_response();
        }
    };
    if let Readiness::Polling { grace } = state.inner.readiness {
        let limit = Timestamp::now()
            .checked_sub(jiff::SignedDuration::try_from(grace).unwrap_or_default())
            .unwrap_or(Timestamp::UNIX_EPOCH);
        if let Some(due) = lag.earliest_due.filter(|due| *due < limit) {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: a feed has been due since {due} and no poll cycle took it"),
            )
                .into_response();
        }
    }
    (StatusCode::OK, "ready").into_response()
}

/// `/login?next=PATH`: where to go after logging in.
#[derive(Debug, Default, Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

async fn login_form(
    State(state): State<WebState>,
    Query(query): Query<LoginQuery>,
) -> Html<String> {
    let next = security::local_path(query.next.as_deref());
    Html(pages::login(&state.inner.csrf, false, next).into_string())
}

/// The login form's fields.
#[derive(Debug, Deserialize)]
struct LoginForm {
    csrf: Option<String>,
    token: Option<String>,
    /// The page asked for before the login (a local path; anything else goes to `/`).
    next: Option<String>,
}

async fn login(State(state): State<WebState>, Form(form): Form<LoginForm>) -> Response {
    if !security::csrf_ok(&state, form.csrf.as_deref()) {
        return (StatusCode::FORBIDDEN, "stale form; reload the login page").into_response();
    }
    let next = security::local_path(form.next.as_deref());
    let Some(token) = &state.inner.token else {
        return Redirect::to(next).into_response();
    };
    if !form
        .token
        .as_deref()
        .is_some_and(|t| security::same_secret(t.trim(), token))
    {
        return (
            StatusCode::UNAUTHORIZED,
            Html(pages::login(&state.inner.csrf, true, next).into_string()),
        )
            .into_response();
    }
    let mut response = Redirect::to(next).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&security::login_cookie(token)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

async fn app_js() -> Response {
    static_file("text/javascript; charset=utf-8", APP_JS)
}

async fn app_css() -> Response {
    static_file("text/css; charset=utf-8", APP_CSS)
}

fn static_file(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("max-age=300"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn not_found() -> PageError {
    PageError(StatusCode::NOT_FOUND, "No such page.".into())
}

#[cfg(test)]
mod tests;
