//! Who may use the page and how: the `Host` check against DNS rebinding, the access token,
//! CSRF tokens on every POST, and the security headers on every answer.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use tracing::{Instrument, debug, info_span, warn};

use super::{WebState, pages};

/// The cookie that carries the access token after login.
pub const TOKEN_COOKIE: &str = "storywatch_token";

/// Content-Security-Policy: nothing from elsewhere, no inline script or style, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// A fresh random token (hex), e.g. the per-process CSRF secret.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Host` values a loopback listener answers to; `None` (any host) off loopback, where the
/// access token is required instead (a rebinding page never holds the token).
pub fn allowed_hosts(listen: SocketAddr) -> Option<Vec<String>> {
    if !listen.ip().is_loopback() {
        return None;
    }
    let port = listen.port();
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "[::1]".to_string(),
    ];
    let own = match listen {
        SocketAddr::V4(v4) => v4.ip().to_string(),
        SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
    };
    if !names.contains(&own) {
        names.push(own);
    }
    let with_port: Vec<String> = names.iter().map(|n| format!("{n}:{port}")).collect();
    names.extend(with_port);
    Some(names)
}

fn host_allowed(state: &WebState, headers: &HeaderMap) -> bool {
    let Some(allowed) = &state.inner.allowed_hosts else {
        return true;
    };
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| allowed.iter().any(|a| a.eq_ignore_ascii_case(host)))
}

/// The token a request presents: `Authorization: Bearer`, the login cookie, or `?token=`.
fn presented_token(request: &Request) -> (Option<String>, bool) {
    let headers = request.headers();
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
    {
        return (Some(bearer.trim().to_string()), false);
    }
    for cookie in headers.get_all(header::COOKIE) {
        let Ok(cookie) = cookie.to_str() else {
            continue;
        };
        for pair in cookie.split(';') {
            if let Some(value) = pair
                .trim()
                .strip_prefix(TOKEN_COOKIE)
                .and_then(|v| v.strip_prefix('='))
            {
                return (Some(value.to_string()), false);
            }
        }
    }
    let from_query = request.uri().query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "token")
            .map(|(_, v)| v.into_owned())
    });
    let in_query = from_query.is_some();
    (from_query, in_query)
}

/// The `Set-Cookie` value that logs a browser in.
pub fn login_cookie(token: &str) -> String {
    format!("{TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

/// Paths anyone who passes the `Host` check may fetch: probes, the login form, static files.
fn is_public(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/login") || path.starts_with("/static/")
}

/// A cross-site POST: its `Origin` names another host, or the browser says it is cross-site.
fn cross_site(headers: &HeaderMap) -> bool {
    if headers
        .get("sec-fetch-site")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|site| site == "cross-site")
    {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|h| h.to_str().ok()) {
        None | Some("null") => false,
        Some(origin) => {
            let origin_host =
                url::Url::parse(origin)
                    .ok()
                    .map(|u| match (u.host_str(), u.port()) {
                        (Some(h), Some(p)) => format!("{h}:{p}"),
                        (Some(h), None) => h.to_string(),
                        _ => String::new(),
                    });
            origin_host.as_deref() != host
        }
    }
}

/// Every request passes here: `Host` check, access token, cross-site POST check; every answer
/// gets the security headers.
pub async fn guard(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let span = info_span!("http", method = %request.method(), path = %request.uri().path());
    async move {
        let mut response = check(&state, request, next).await;
        debug!(status = response.status().as_u16(), "answered");
        add_headers(response.headers_mut());
        response
    }
    .instrument(span)
    .await
}

async fn check(state: &WebState, request: Request, next: Next) -> Response {
    if !host_allowed(state, request.headers()) {
        warn!(host = ?request.headers().get(header::HOST), "request with an unexpected Host refused (DNS rebinding?)");
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "unexpected Host header: open the page as http://localhost:PORT/ or http://127.0.0.1:PORT/",
        )
            .into_response();
    }
    if request.method() == Method::POST && cross_site(request.headers()) {
        return (StatusCode::FORBIDDEN, "cross-site request refused").into_response();
    }
    if let Some(token) = &state.inner.token
        && !is_public(request.uri().path())
    {
        let (presented, in_query) = presented_token(&request);
        let valid = presented.as_deref().is_some_and(|p| same_secret(p, token));
        // The page asked for, without the token: where the browser goes once it holds the
        // cookie. A POST's target is no page to come back to.
        let wanted = if request.method() == Method::GET {
            without_token(request.uri())
        } else {
            "/".to_string()
        };
        if !valid {
            let login = pages::login(&state.inner.csrf, presented.is_some(), &wanted);
            return (
                StatusCode::UNAUTHORIZED,
                axum::response::Html(login.into_string()),
            )
                .into_response();
        }
        if in_query {
            // Trade the token in the URL for a cookie, and drop it from the address bar.
            let mut response = Redirect::to(local_path(Some(&wanted))).into_response();
            if let Ok(cookie) = HeaderValue::from_str(&login_cookie(token)) {
                response.headers_mut().insert(header::SET_COOKIE, cookie);
            }
            return response;
        }
    }
    next.run(request).await
}

/// The request's path and query without any `token` parameter (the rest kept in order).
fn without_token(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_string();
    };
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if key != "token" {
            kept.append_pair(&key, &value);
        }
    }
    let kept = kept.finish();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{kept}")
    }
}

fn add_headers(headers: &mut HeaderMap) {
    let fixed = [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Whether a form's CSRF field is this process's token.
pub fn csrf_ok(state: &WebState, presented: Option<&str>) -> bool {
    presented.is_some_and(|p| same_secret(p, &state.inner.csrf))
}

/// Where a form may send the browser back to: a local path only, never another site.
pub fn local_path(back: Option<&str>) -> &str {
    match back {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}
