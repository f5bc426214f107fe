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

/// The followed stories' names joined for titles (`A · B`).
pub fn names(stories: &[StoryView]) -> String {
    stories
        .iter()
        .map(|s| s.name.as_str())
        .collect::<Vec<_>>()
        .join(" · ")
}

/// The page frame: navigation, the stylesheet and the shortcut script from the binary. With
/// several stories the nav's story link leads to the chooser.
pub fn layout(title: &str, stories: &[StoryView], body: Markup) -> Markup {
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
                    span.meta { (names(stories)) }
                    nav {
                        a href="/" { "Matches" }
                        a href="/?review=unreviewed" { "To review" }
                        @if stories.len() > 1 { a href="/story" { "Stories" } }
                        @else { a href="/story" { "Story" } }
                        a href="/feeds" { "Feeds" }
                        a href="/feed.atom" { "Atom" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The filters the list page was asked for, echoed back into its form and its links.
#[derive(Debug, Clone)]
pub struct Filters {
    /// Full-text query.
    pub q: String,
    /// Story filter value (a story's name).
    pub story: String,
    /// Verdict filter value.
    pub verdict: String,
    /// Review filter value.
    pub review: String,
    /// First day, `YYYY-MM-DD`.
    pub since: String,
    /// Last day, `YYYY-MM-DD`.
    pub until: String,
    /// The page shown, from 1.
    pub page: usize,
    /// Whether rows follow on the next page.
    pub more: bool,
}

impl Default for Filters {
    fn default() -> Filters {
        Filters {
            q: String::new(),
            story: String::new(),
            verdict: String::new(),
            review: String::new(),
            since: String::new(),
            until: String::new(),
            page: 1,
            more: false,
        }
    }
}

impl Filters {
    /// The list URL with these filters at `page`: for the pager and for forms to return to.
    pub fn url(&self, page: usize) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in [
            ("q", &self.q),
            ("story", &self.story),
            ("verdict", &self.verdict),
            ("review", &self.review),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.is_empty() {
                query.append_pair(key, value);
            }
        }
        if page > 1 {
            query.append_pair("page", &page.to_string());
        }
        let query = query.finish();
        if query.is_empty() {
            "/".to_string()
        } else {
            format!("/?{query}")
        }
    }
}

fn option(value: &str, label: &str, current: &str) -> Markup {
    html! {
        @if value == current { option value=(value) selected { (label) } }
        @else { option value=(value) { (label) } }
    }
}

fn filter_form(f: &Filters, stories: &[StoryView]) -> Markup {
    html! {
        form.filters method="get" action="/" {
            label { "Search all items" input #q type="search" name="q" value=(f.q) placeholder="words…"; }
            @if stories.len() > 1 || !f.story.is_empty() {
                label { "Story"
                    select name="story" {
                        (option("", "any", &f.story))
                        @for s in stories { (option(&s.name, &s.name, &f.story)) }
                        @if !f.story.is_empty() && !stories.iter().any(|s| s.name == f.story) {
                            (option(&f.story, &f.story, &f.story))
                        }
                    }
                }
            }
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

/// The element id of one (item, story) row: an item matched by two stories is two rows, each
/// with its own buttons, so the id carries the story (hashed: names may hold any character).
pub fn anchor(id: i64, story: Option<&str>) -> String {
    match story {
        // FNV-1a: stable across builds, so a bookmarked anchor survives an upgrade.
        Some(name) => {
            let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
            format!("item-{id}-{hash:08x}")
        }
        None => format!("item-{id}"),
    }
}

/// A badge: the class names the value, for the stylesheet's colours.
fn badge(class: &str, label: &str) -> Markup {
    html! { span class=(format!("badge {class}")) { (label) } }
}

fn mark_form(
    id: i64,
    story: &str,
    state: &str,
    label: &str,
    cx: &CardContext<'_>,
    back: &str,
) -> Markup {
    html! {
        form class=(format!("mark-{state}")) method="post" action=(format!("/items/{id}/mark")) {
            input type="hidden" name="csrf" value=(cx.csrf);
            input type="hidden" name="state" value=(state);
            input type="hidden" name="story" value=(story);
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
    /// The followed stories, for baseline titles and the story of unmatched search results.
    pub stories: &'a [StoryView],
    /// Display time zone.
    pub zone: &'a TimeZone,
}

impl CardContext<'_> {
    fn several(&self) -> bool {
        self.stories.len() > 1
    }
}

/// One matched item with its mark buttons, for its (item, story) pair.
pub fn match_card(m: &MatchRow, cx: &CardContext<'_>) -> Markup {
    let anchor = anchor(m.id, Some(&m.story));
    let back = format!("{}#{anchor}", cx.back);
    let baseline = m.baseline.as_deref().map(|id| {
        let found = cx
            .stories
            .iter()
            .filter(|s| s.name == m.story)
            .flat_map(|s| &s.baselines)
            .find(|b| b.id == id);
        (id, found)
    });
    html! {
        article id=(anchor) class=(format!("item {}", m.review.as_str())) data-id=(m.id) data-story=(m.story) {
            (headline(&m.title, m.link.as_deref()))
            div.meta {
                @if cx.several() { (badge("story", &m.story)) }
                (badge(verdict_key(m.verdict), verdict_label(m.verdict)))
                (badge(m.review.as_str(), m.review.as_str()))
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
                (mark_form(m.id, &m.story, "relevant", "Relevant (r)", cx, &back))
                (mark_form(m.id, &m.story, "irrelevant", "Irrelevant (x)", cx, &back))
                @if m.review != Review::Unreviewed {
                    (mark_form(m.id, &m.story, "unreviewed", "Undo (u)", cx, &back))
                }
            }
        }
    }
}

/// One full-text search result; unmatched ones can be marked relevant (a missed follow-up) to
/// the story searched in, or with several stories and none chosen, to any of them.
pub fn search_card(hit: &SearchHit, searched: &str, cx: &CardContext<'_>) -> Markup {
    let anchor = anchor(hit.id, hit.story.as_deref());
    let back = format!("{}#{anchor}", cx.back);
    let review = hit.review.map_or("unmatched", Review::as_str);
    let targets: Vec<&str> = match (&hit.story, searched) {
        (Some(story), _) => vec![story.as_str()],
        (None, "") => cx.stories.iter().map(|s| s.name.as_str()).collect(),
        (None, searched) => vec![searched],
    };
    html! {
        article id=(anchor) class=(format!("item {review}")) data-id=(hit.id) {
            (headline(&hit.title, hit.link.as_deref()))
            div.meta {
                @if let (true, Some(story)) = (cx.several(), &hit.story) { (badge("story", story)) }
                @match hit.verdict {
                    Some(v) => (badge(verdict_key(v), verdict_label(v))),
                    None => (badge("unmatched", "not matched")),
                }
                @if let Some(r) = hit.review { (badge(r.as_str(), r.as_str())) }
                (hit.source.as_deref().unwrap_or("unknown outlet")) " · "
                (when(hit.published_at.unwrap_or(hit.first_seen_at), cx.zone))
                " · #" (hit.id)
            }
            @if !hit.summary.is_empty() { p.summary { (hit.summary) } }
            div.actions {
                @for story in &targets {
                    @if targets.len() > 1 {
                        (mark_form(hit.id, story, "relevant", &format!("Relevant to {story}"), cx, &back))
                    } @else {
                        (mark_form(hit.id, story, "relevant", "Relevant (r)", cx, &back))
                    }
                }
                @if let (Some(story), Some(_)) = (&hit.story, hit.verdict) {
                    (mark_form(hit.id, story, "irrelevant", "Irrelevant (x)", cx, &back))
                    @if hit.review.is_some_and(|r| r != Review::Unreviewed) {
                        (mark_form(hit.id, story, "unreviewed", "Undo (u)", cx, &back))
                    }
                }
            }
        }
    }
}

/// Previous / next page links that keep the filters.
fn pager(filters: &Filters) -> Markup {
    html! {
        @if filters.page > 1 || filters.more {
            nav.pager {
                @if filters.page > 1 {
                    a rel="prev" href=(filters.url(filters.page - 1)) { "← newer" }
                }
                span.meta { "page " (filters.page) }
                @if filters.more {
                    a rel="next" href=(filters.url(filters.page + 1)) { "older →" }
                }
            }
        }
    }
}

/// The list page: filters, then one page of matches or search results.
pub fn list_page(
    filters: &Filters,
    matches: &[MatchRow],
    hits: Option<&[SearchHit]>,
    cx: &CardContext<'_>,
) -> Markup {
    let first = (filters.page - 1) * super::PAGE_SIZE;
    let body = html! {
        (filter_form(filters, cx.stories))
        @match hits {
            Some(hits) => {
                p.meta {
                    @if (filters.page > 1 || filters.more) && !hits.is_empty() {
                        "results " (first + 1) "–" (first + hits.len()) " for “" (filters.q) "”"
                    } @else {
                        (hits.len()) " items match “" (filters.q) "”"
                    }
                    " (matched or not, best first)"
                }
                @if hits.is_empty() { p.empty { "Nothing stored matches those words and filters." } }
                @for hit in hits { (search_card(hit, &filters.story, cx)) }
            },
            None => {
                p.meta {
                    @if (filters.page > 1 || filters.more) && !matches.is_empty() {
                        "matches " (first + 1) "–" (first + matches.len()) ", newest first"
                    } @else {
                        (matches.len()) " matches, newest first"
                    }
                }
                @if matches.is_empty() {
                    p.empty { "No matches here yet. storywatch stores them as it polls the feeds." }
                }
                @for m in matches { (match_card(m, cx)) }
            },
        }
        (pager(filters))
    };
    layout("Matches", cx.stories, body)
}

/// How many moved terms the story page's table shows.
const MOVED_TERMS: usize = 20;

/// Changes smaller than this are rounding, not learning.
const SHOWN_CHANGE: f64 = 0.0005;

/// One term whose weight review moved.
#[derive(Debug, Clone, PartialEq)]
pub struct MovedTerm {
    /// The term as the seeds or the marked items wrote it.
    pub term: String,
    /// Its weight in the profile built from the seeds.
    pub seed: f64,
    /// Its weight in the profile the matcher uses now (seeds, stream and review).
    pub learned: f64,
}

/// What review taught a story, for the story page.
#[derive(Debug, Clone)]
pub struct Learning {
    /// `learned from 12 reviews (9 relevant, 3 irrelevant): +tariff +busan −overdose`.
    pub summary: String,
    /// The profile's top terms after review.
    pub top_terms: String,
    /// The terms review moved most, largest change first.
    pub moved: Vec<MovedTerm>,
}

impl Learning {
    /// The learning of `story` as last loaded; `None` when nothing is marked.
    pub fn of(story: &crate::pipeline::Story) -> Option<Learning> {
        let adjustment = story.adjustment();
        let summary = adjustment.describe()?;
        let learned = story.learned_profile();
        let top_terms = learned
            .summary()
            .lines()
            .find(|l| l.starts_with("top terms:"))
            .unwrap_or_default()
            .to_string();
        let weight = |profile: &crate::story::Profile, term: &str| {
            profile.centroid.get(term).copied().unwrap_or(0.0)
        };
        let mut moved: Vec<MovedTerm> = adjustment
            .deltas
            .keys()
            .map(|term| MovedTerm {
                term: learned.readable(term).to_string(),
                seed: weight(&story.profile, term),
                learned: weight(&learned, term),
            })
            .filter(|m| (m.learned - m.seed).abs() >= SHOWN_CHANGE)
            .collect();
        moved.sort_by(|a, b| {
            (b.learned - b.seed)
                .abs()
                .total_cmp(&(a.learned - a.seed).abs())
                .then_with(|| a.term.cmp(&b.term))
        });
        moved.truncate(MOVED_TERMS);
        Some(Learning {
            summary,
            top_terms,
            moved,
        })
    }
}

/// The story chooser: with several stories, `/story` lists them.
pub fn story_chooser(stories: &[StoryView]) -> Markup {
    let body = html! {
        h2 { "Stories" }
        table {
            tr { th { "Story" } th { "Baseline articles" } th { "Matches" } }
            @for s in stories {
                tr {
                    td { a href=(story_url(&s.name)) { (s.name) } }
                    td { (s.baselines.len()) }
                    td { a href=(list_of(&s.name)) { "list" } }
                }
            }
        }
    };
    layout("Stories", stories, body)
}

/// The story page's URL for `name`.
pub fn story_url(name: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("name", name)
        .finish();
    format!("/story?{query}")
}

/// The match list of one story.
fn list_of(name: &str) -> String {
    Filters {
        story: name.to_string(),
        ..Filters::default()
    }
    .url(1)
}

/// The story page: baseline articles, the profile and how review changed it, and a timeline of
/// follow-ups.
pub fn story_page(
    story: &StoryView,
    stories: &[StoryView],
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
        @if stories.len() > 1 {
            nav.stories {
                "Stories: "
                @for s in stories {
                    @if s.name == story.name { strong { (s.name) } }
                    @else { a href=(story_url(&s.name)) { (s.name) } }
                    " "
                }
            }
        }
        h2 { (story.name) }
        p { a href=(list_of(&story.name)) { "This story's matches" } }
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
                @if !l.moved.is_empty() {
                    table.moved {
                        tr { th { "Term" } th { "Seed weight" } th { "Learned weight" } th { "Change" } }
                        @for m in &l.moved {
                            tr {
                                td { (m.term) }
                                td { (format!("{:.3}", m.seed)) }
                                td { (format!("{:.3}", m.learned)) }
                                td class=(if m.learned >= m.seed { "up" } else { "down" }) {
                                    (format!("{:+.3}", m.learned - m.seed))
                                }
                            }
                        }
                    }
                }
                p.note {
                    "Weights are the terms' shares of the profile's centroid. Items marked "
                    "irrelevant also lower the score of items much like them; the seeds stay "
                    "dominant (review moves at most 30% of the profile's weight)."
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
                        " " (badge(m.review.as_str(), m.review.as_str()))
                    }
                }
            }
        }
    };
    layout("Story", stories, body)
}

/// The feeds page: each feed's health.
pub fn feeds_page(stories: &[StoryView], feeds: &[FeedStatus], zone: &TimeZone) -> Markup {
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
    layout("Feeds", stories, body)
}

/// The login form shown instead of a page when a token is required; `next` is the local path
/// to go to after logging in.
pub fn login(csrf: &str, wrong: bool, next: &str) -> Markup {
    let body = html! {
        h2 { "Log in" }
        @if wrong { p.failing { "That token is not right." } }
        p { "This storywatch needs its access token ([web] token or token_file in the config)." }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="next" value=(next);
            label { "Token " input type="password" name="token" autocomplete="current-password"; }
            " "
            button type="submit" { "Log in" }
        }
    };
    layout("Log in", &[], body)
}

/// A short error page.
pub fn error_page(title: &str, message: &str) -> Markup {
    layout(title, &[], html! { h2 { (title) } p { (message) } })
}
