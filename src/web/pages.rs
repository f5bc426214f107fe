//! The HTML pages, built with maud: every value is escaped by construction, and links from
//! feeds pass [`http_link`] (http(s) only) before they become an `href`.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use maud::{DOCTYPE, Markup, html};

use super::StoryView;
use crate::digest::model::http_link;
use crate::store::{FeedStatus, MatchRow, Review, SearchHit};
use crate::story::VerdictKind;

/// The verdict's stored name, used as CSS class and filter value.
pub fn verdict_key(kind: VerdictKind) -> &'static str {
    match kind {
        VerdictKind::FollowUp => "follow_up",
        VerdictKind::ReReport => "re_report",
        VerdictKind::Related => "related",
        VerdictKind::OffTopic => "off_topic",
    }
}

fn verdict_label(kind: VerdictKind) -> &'static str {
    match kind {
        VerdictKind::FollowUp => "follow-up",
        VerdictKind::ReReport => "re-report",
        VerdictKind::Related => "related",
        VerdictKind::OffTopic => "off-topic",
    }
}

fn when(time: Timestamp, zone: &TimeZone) -> String {
    time.to_zoned(zone.clone())
        .strftime("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// The page frame: navigation, the stylesheet and the shortcut script from the binary.
pub fn layout(title: &str, story: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · storywatch" }
                link rel="stylesheet" href="/static/app.css";
                link rel="alternate" type="application/atom+xml" title="Matched items" href="/feed.atom";
                script src="/static/app.js" defer {}
            }
            body {
                header.top {
                    h1 { "storywatch" }
                    span.meta { (story) }
                    nav {
                        a href="/" { "Matches" }
                        a href="/?review=unreviewed" { "To review" }
                        a href="/story" { "Story" }
                        a href="/feeds" { "Feeds" }
                        a href="/feed.atom" { "Atom" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The filters the list page was asked for, echoed back into its form.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    /// Full-text query.
    pub q: String,
    /// Verdict filter value.
    pub verdict: String,
    /// Review filter value.
    pub review: String,
    /// First day, `YYYY-MM-DD`.
    pub since: String,
    /// Last day, `YYYY-MM-DD`.
    pub until: String,
}

fn option(value: &str, label: &str, current: &str) -> Markup {
    html! {
        @if value == current { option value=(value) selected { (label) } }
        @else { option value=(value) { (label) } }
    }
}

fn filter_form(f: &Filters) -> Markup {
    html! {
        form.filters method="get" action="/" {
            label { "Search all items" input #q type="search" name="q" value=(f.q) placeholder="words…"; }
            label { "Verdict"
                select name="verdict" {
                    (option("", "any", &f.verdict))
                    (option("follow_up", "follow-up", &f.verdict))
                    (option("re_report", "re-report", &f.verdict))
                    (option("related", "related", &f.verdict))
                }
            }
            label { "Review"
                select name="review" {
                    (option("", "any", &f.review))
                    (option("unreviewed", "unreviewed", &f.review))
                    (option("relevant", "relevant", &f.review))
                    (option("irrelevant", "irrelevant", &f.review))
                }
            }
            label { "From" input type="date" name="since" value=(f.since); }
            label { "To" input type="date" name="until" value=(f.until); }
            button type="submit" { "Show" }
            a href="/" { "clear" }
        }
        p.keys { "Keys: j / k move · r relevant · x irrelevant · u undo · o open · / search" }
    }
}

fn mark_form(id: i64, state: &str, label: &str, csrf: &str, back: &str) -> Markup {
    html! {
        form class=(format!("mark-{state}")) method="post" action=(format!("/items/{id}/mark")) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="state" value=(state);
            input type="hidden" name="back" value=(back);
            button type="submit" { (label) }
        }
    }
}

fn headline(title: &str, link: Option<&str>) -> Markup {
    html! {
        h2 {
            @match http_link(link) {
                Some(href) => a.headline href=(href) rel="noopener noreferrer" { (title) },
                None => span.headline { (title) },
            }
        }
    }
}

/// What an item card needs besides the row.
pub struct CardContext<'a> {
    /// The CSRF token for the forms.
    pub csrf: &'a str,
    /// The page to come back to after a mark (local path with query).
    pub back: &'a str,
    /// The story, for baseline titles.
    pub story: &'a StoryView,
    /// Display time zone.
    pub zone: &'a TimeZone,
}

/// One matched item with its mark buttons.
pub fn match_card(m: &MatchRow, cx: &CardContext<'_>) -> Markup {
    let back = format!("{}#item-{}", cx.back, m.id);
    let baseline = m
        .baseline
        .as_deref()
        .map(|id| (id, cx.story.baselines.iter().find(|b| b.id == id)));
    html! {
        article id=(format!("item-{}", m.id)) class=(format!("item {}", m.review.as_str())) data-id=(m.id) {
            (headline(&m.title, m.link.as_deref()))
            div.meta {
                span.badge class=(verdict_key(m.verdict)) { (verdict_label(m.verdict)) }
                span.badge class=(m.review.as_str()) { (m.review.as_str()) }
                "score " (format!("{:.2}", m.score)) " · "
                (m.source.as_deref().unwrap_or("unknown outlet")) " · "
                (when(m.published_at.unwrap_or(m.first_seen_at), cx.zone))
                " · #" (m.id)
            }
            @if !m.summary.is_empty() { p.summary { (m.summary) } }
            @if let Some((id, found)) = baseline {
                div.follows {
                    "Follows up on: "
                    @match found {
                        Some(b) => {
                            @match http_link(b.url.as_deref()) {
                                Some(href) => a href=(href) rel="noopener noreferrer" { (b.title) },
                                None => (b.title),
                            }
                            " (" (b.outlet.as_deref().unwrap_or("unknown outlet"))
                            @if let Some(date) = b.published { ", " (date.to_string()) }
                            ")"
                        },
                        None => (id),
                    }
                }
            }
            @if !m.also_reported_by.is_empty() {
                div.group {
                    @if m.group_id == Some(m.id) { "Also reported by: " } @else { "Copy or rewrite of an earlier report; group: " }
                    (m.also_reported_by.join(", "))
                    @if let Some(group) = m.group_id { " (group #" (group) ")" }
                }
            }
            @if !m.why.is_empty() {
                ul.why { @for reason in &m.why { li { (reason) } } }
            }
            div.actions {
                (mark_form(m.id, "relevant", "Relevant (r)", cx.csrf, &back))
                (mark_form(m.id, "irrelevant", "Irrelevant (x)", cx.csrf, &back))
                @if m.review != Review::Unreviewed {
                    (mark_form(m.id, "unreviewed", "Undo (u)", cx.csrf, &back))
                }
            }
        }
    }
}

/// One full-text search result; unmatched ones can be marked relevant (a missed follow-up).
pub fn search_card(hit: &SearchHit, cx: &CardContext<'_>) -> Markup {
    let back = format!("{}#item-{}", cx.back, hit.id);
    let review = hit.review.map_or("unmatched", Review::as_str);
    html! {
        article id=(format!("item-{}", hit.id)) class=(format!("item {review}")) data-id=(hit.id) {
            (headline(&hit.title, hit.link.as_deref()))
            div.meta {
                @match hit.verdict {
                    Some(v) => span.badge class=(verdict_key(v)) { (verdict_label(v)) },
                    None => span.badge { "not matched" },
                }
                @if let Some(r) = hit.review { span.badge class=(r.as_str()) { (r.as_str()) } }
                (hit.source.as_deref().unwrap_or("unknown outlet")) " · "
                (when(hit.published_at.unwrap_or(hit.first_seen_at), cx.zone))
                " · #" (hit.id)
            }
            @if !hit.summary.is_empty() { p.summary { (hit.summary) } }
            div.actions {
                (mark_form(hit.id, "relevant", "Relevant (r)", cx.csrf, &back))
                @if hit.verdict.is_some() {
                    (mark_form(hit.id, "irrelevant", "Irrelevant (x)", cx.csrf, &back))
                    @if hit.review.is_some_and(|r| r != Review::Unreviewed) {
                        (mark_form(hit.id, "unreviewed", "Undo (u)", cx.csrf, &back))
                    }
                }
            }
        }
    }
}

/// The list page: filters, then matches or search results.
pub fn list_page(
    filters: &Filters,
    matches: &[MatchRow],
    hits: Option<&[SearchHit]>,
    cx: &CardContext<'_>,
) -> Markup {
    let body = html! {
        (filter_form(filters))
        @match hits {
            Some(hits) => {
                p.meta { (hits.len()) " items match “" (filters.q) "” (matched or not, best first)" }
                @if hits.is_empty() { p.empty { "Nothing stored matches those words." } }
                @for hit in hits { (search_card(hit, cx)) }
            },
            None => {
                p.meta { (matches.len()) " matches, newest first" }
                @if matches.is_empty() {
                    p.empty { "No matches here yet. storywatch stores them as it polls the feeds." }
                }
                @for m in matches { (match_card(m, cx)) }
            },
        }
    };
    layout("Matches", &cx.story.name, body)
}

/// What review taught a story, for the story page.
#[derive(Debug, Clone)]
pub struct Learning {
    /// `learned from 12 reviews (9 relevant, 3 irrelevant): +tariff +busan −overdose`.
    pub summary: String,
    /// The profile's top terms after review.
    pub top_terms: String,
}

impl Learning {
    /// The learning of `story` as last loaded; `None` when nothing is marked.
    pub fn of(story: &crate::pipeline::Story) -> Option<Learning> {
        let summary = story.adjustment().describe()?;
        let learned = story.learned_profile().summary();
        let top_terms = learned
            .lines()
            .find(|l| l.starts_with("top terms:"))
            .unwrap_or_default()
            .to_string();
        Some(Learning { summary, top_terms })
    }
}

/// The story page: baseline articles, the profile and how review changed it, and a timeline of
/// follow-ups.
pub fn story_page(
    story: &StoryView,
    learning: Option<&Learning>,
    timeline: &[MatchRow],
    zone: &TimeZone,
) -> Markup {
    let mut days: Vec<(String, Vec<&MatchRow>)> = Vec::new();
    for m in timeline {
        let day = m
            .published_at
            .unwrap_or(m.first_seen_at)
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d")
            .to_string();
        match days.last_mut() {
            Some((d, list)) if *d == day => list.push(m),
            _ => days.push((day, vec![m])),
        }
    }
    let body = html! {
        h2 { (story.name) }
        h3 { "Baseline articles" }
        table {
            tr { th { "Date" } th { "Outlet" } th { "Title" } th { "Id" } }
            @for b in &story.baselines {
                tr {
                    td { (b.published.map_or("—".to_string(), |d| d.to_string())) }
                    td { (b.outlet.as_deref().unwrap_or("—")) }
                    td {
                        @match http_link(b.url.as_deref()) {
                            Some(href) => a href=(href) rel="noopener noreferrer" { (b.title) },
                            None => (b.title),
                        }
                    }
                    td { code { (b.id) } }
                }
            }
        }
        h3 { "Profile" }
        pre.summary { (story.summary) }
        h3 { "How review changed the profile" }
        @match learning {
            Some(l) => {
                p.learning { (l.summary) }
                p.learning { "After review, " (l.top_terms) }
                p.note {
                    "Items marked irrelevant also lower the score of items much like them; "
                    "the seeds stay dominant (review moves at most 30% of the profile's weight)."
                }
            }
            None => p.empty { "No items marked yet: the profile is the seeds' alone." },
        }
        h3 { "Timeline of follow-ups" }
        @if days.is_empty() { p.empty { "No follow-ups yet." } }
        @for (day, list) in &days {
            h4 { (day) }
            ul {
                @for m in list {
                    li {
                        @match http_link(m.link.as_deref()) {
                            Some(href) => a href=(href) rel="noopener noreferrer" { (m.title) },
                            None => (m.title),
                        }
                        " — " (m.source.as_deref().unwrap_or("unknown outlet"))
                        " " span.badge class=(m.review.as_str()) { (m.review.as_str()) }
                    }
                }
            }
        }
    };
    layout("Story", &story.name, body)
}

/// The feeds page: each feed's health.
pub fn feeds_page(story: &str, feeds: &[FeedStatus], zone: &TimeZone) -> Markup {
    let time = |t: Option<Timestamp>| {
        t.filter(|t| t.as_second() > 0)
            .map_or("—".to_string(), |t| when(t, zone))
    };
    let body = html! {
        h2 { "Feeds" }
        table {
            tr { th { "Feed" } th { "State" } th { "Last success" } th { "Next poll" } th { "Items" } }
            @for f in feeds {
                tr {
                    td { (f.title.as_deref().unwrap_or(&f.url)) br; small.meta { (f.url) } }
                    td {
                        @match (&f.last_error_kind, f.last_success_at) {
                            (Some(kind), _) => span.failing {
                                "failing (" (kind) ", " (f.consecutive_failures) " in a row): "
                                (f.last_error.as_deref().unwrap_or(""))
                            },
                            (None, Some(_)) => "ok",
                            (None, None) => "never polled",
                        }
                    }
                    td { (time(f.last_success_at)) }
                    td { (time(f.next_poll_at)) }
                    td { (f.items) }
                }
            }
        }
        @if feeds.is_empty() { p.empty { "No feeds configured." } }
    };
    layout("Feeds", story, body)
}

/// The login form shown instead of a page when a token is required.
pub fn login(csrf: &str, wrong: bool) -> Markup {
    let body = html! {
        h2 { "Log in" }
        @if wrong { p.failing { "That token is not right." } }
        p { "This storywatch needs its access token ([web] token or token_file in the config)." }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            label { "Token " input type="password" name="token" autocomplete="current-password"; }
            " "
            button type="submit" { "Log in" }
        }
    };
    layout("Log in", "", body)
}

/// A short error page.
pub fn error_page(title: &str, message: &str) -> Markup {
    layout(title, "", html! { h2 { (title) } p { (message) } })
}
