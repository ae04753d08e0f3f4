//! The frame every console page shares: the head, the navigation, the moment picker, errors as
//! sentences, and the helpers that write links and times. Every value is written through maud,
//! which escapes it: a user id `<script>` is text on the page, never markup.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use permledger_api::At;
use permledger_domain::{OrgId, Seq, Timestamp};
use permledger_views::Moment;
use serde::de::DeserializeOwned;

use super::session::Signed;
use crate::ApiError;

/// Where a page sits: the org it is about, and the section of the navigation it belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Orgs,
    Org,
    People,
    Trail,
    Integrity,
}

/// The page's frame: who is signed in, and the org (if any) whose sections the navigation lists.
pub struct Frame<'a> {
    pub signed: &'a Signed,
    pub org: Option<&'a OrgId>,
    pub section: Section,
    /// The moment the page shows, kept when moving between sections.
    pub at: Option<Seq>,
}

/// A whole page: the frame around `body`, answered with `status`.
pub fn page(frame: &Frame<'_>, title: &str, status: StatusCode, body: Markup) -> Response {
    let at = frame.at.map(|s| ("at", s.to_string()));
    let keep: Vec<(&str, String)> = at.into_iter().collect();
    let nav = |section: Section, label: &str, href: String| {
        html! {
            li { a href=(href) aria-current=[(frame.section == section).then_some("page")] { (label) } }
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · permledger" }
                link rel="icon" href="/console/assets/icon.svg" type="image/svg+xml";
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/console" { "permledger" }
                    nav aria-label="Sections" {
                        ul {
                            (nav(Section::Orgs, "Orgs", "/console".to_string()))
                            @if let Some(org) = frame.org {
                                (nav(Section::Org, "Org", url(&format!("/console/orgs/{}", seg(org.as_str())), &keep)))
                                (nav(Section::People, "People", url(&format!("/console/orgs/{}/people", seg(org.as_str())), &keep)))
                                (nav(Section::Trail, "Audit trail", url(&format!("/console/orgs/{}/trail", seg(org.as_str())), &[])))
                            }
                            (nav(Section::Integrity, "Integrity", "/console/integrity".to_string()))
                        }
                    }
                    form.signout method="post" action="/console/sign-out" {
                        span.who { "Signed in as " (frame.signed.label()) }
                        input type="hidden" name="csrf" value=(frame.signed.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

/// An error as a page: its sentence, and the status of its code.
pub fn problem(frame: &Frame<'_>, title: &str, e: &ApiError) -> Response {
    page(
        frame,
        title,
        e.status,
        html! { p.error role="alert" { (e.message) } },
    )
}

/// A page, or its error as a page.
pub fn answer(frame: &Frame<'_>, title: &str, body: Result<Markup, ApiError>) -> Response {
    match body {
        Ok(b) => page(frame, title, StatusCode::OK, b),
        Err(e) => problem(frame, title, &e),
    }
}

/// A path segment, percent-encoded.
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.:~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&...`, leaving out empty values.
pub fn url(path: &str, params: &[(&str, String)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        if !v.is_empty() {
            q.append_pair(k, v);
        }
    }
    let q = q.finish();
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{q}")
    }
}

/// A time as people read it, to the second, in UTC.
pub fn when(t: Timestamp) -> String {
    let s = t.to_string();
    // RFC 3339 `2026-03-03T17:00:00Z`, or with fractions of a second: cut to the second.
    match (s.get(..10), s.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => s,
    }
}

/// A `<time>` element: readable text, the exact instant in `datetime`.
pub fn time(t: Timestamp) -> Markup {
    html! { time datetime=(t.to_string()) { (when(t)) } }
}

/// The query string read into `T`, with a sentence naming what is wrong.
pub fn params<T: DeserializeOwned>(raw: Option<&str>) -> Result<T, ApiError> {
    let de =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw.unwrap_or("").as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        ApiError::invalid(format!(
            "the address's `{field}` is not understood: {}",
            e.inner()
        ))
    })
}

/// A moment as the console's address and forms give it: nothing (the present), a log position,
/// or a time (`2026-03-03`, `2026-03-03T17:00`, RFC 3339; without a zone, UTC).
pub fn moment(at: Option<&str>) -> Result<Option<At>, ApiError> {
    let Some(at) = at.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    if at.bytes().all(|b| b.is_ascii_digit()) {
        return at
            .parse::<At>()
            .map(Some)
            .map_err(|e| ApiError::invalid(format!("the moment `{at}`: {e}")));
    }
    Timestamp::parse_human(at)
        .map(|t| Some(At::Time(t)))
        .map_err(|e| ApiError::invalid(format!("the moment: {e}")))
}

/// The moment picker: a time, or a position on a slider over the org's history, each a form
/// that keeps the page's other parameters; and a link back to the present.
pub fn picker(path: &str, keep: &[(&str, String)], shown: Moment, first: Seq, last: Seq) -> Markup {
    let hidden = html! {
        @for (k, v) in keep {
            @if !v.is_empty() { input type="hidden" name=(k) value=(v); }
        }
    };
    let local = shown.time.to_string();
    let local = local.get(..19).unwrap_or(&local).to_string();
    html! {
        section.moment aria-label="Moment" {
            p.shown {
                "Showing the moment after event " strong { (shown.seq) } ", recorded " (time(shown.time))
                @if shown.seq == last { " (the present)" }
            }
            div.pickers {
                form method="get" action=(path) {
                    (hidden)
                    label for="moment-time" { "Time (UTC)" }
                    input #moment-time type="datetime-local" name="at" step="1" value=(local) required;
                    button type="submit" { "Show" }
                }
                form method="get" action=(path) {
                    (hidden)
                    label for="moment-seq" { "Position in the log" }
                    input #moment-seq type="range" name="at" min=(first) max=(last.max(first))
                        value=(shown.seq.clamp(first, last.max(first))) data-autosubmit;
                    output for="moment-seq" { (shown.seq) }
                    span.range { (first) "–" (last) }
                    button type="submit" { "Show" }
                }
                a href=(url(path, keep)) { "Now" }
            }
        }
    }
}

/// An empty state, said in a sentence.
pub fn empty(sentence: &str) -> Markup {
    html! { p.empty { (sentence) } }
}
