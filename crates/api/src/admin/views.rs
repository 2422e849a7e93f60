//! The dashboard's frame (head, navigation, language switch, sign-out), its error pages, and
//! small pieces every page uses. Markup is built with maud, which escapes every value.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use domain::errors::Lang;
use domain::vendor_state::VendorState;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use uuid::Uuid;

use super::i18n::t;
use super::session::Session;

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Runs,
    Vendors,
    Webhooks,
    Audit,
    None,
}

const STYLE: &str = r#"
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;margin:0;color:#1d2433;background:#f6f7f9;font-size:15px;line-height:1.45}
header{background:#1d2433;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#cfd8ea;text-decoration:none}header a.on{color:#fff;font-weight:600;border-bottom:2px solid #7fb0ff}
header .brand{font-weight:700;color:#fff;margin-inline-end:1rem}
header .me{margin-inline-start:auto;display:flex;gap:.8rem;align-items:center;font-size:.9rem}
header form{margin:0}header button{background:none;border:1px solid #6b7791;color:#fff;border-radius:4px;padding:.15rem .6rem;cursor:pointer}
main{max-width:1280px;margin:1rem auto;padding:0 1.2rem}
h1{font-size:1.35rem;margin:.4rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
table{border-collapse:collapse;width:100%;background:#fff;border:1px solid #dde1e8}
th,td{padding:.35rem .55rem;border-bottom:1px solid #eceff3;text-align:start;vertical-align:top}
th{background:#eef1f5;font-weight:600;font-size:.85rem}
td.num{font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
a{color:#1f5fbf}
.badge{display:inline-block;padding:0 .45rem;border-radius:9px;font-size:.8rem;font-weight:600;background:#e3e7ee}
.s-pending{background:#fff1c2}.s-running{background:#cfe3ff}.s-waiting{background:#e4dcff}.s-paused{background:#ffd8b0}
.s-succeeded{background:#c9f0d2}.s-failed{background:#ffc9c9}.s-cancelled{background:#dcdcdc}
.v-onboarding{background:#cfe3ff}.v-awaiting_approval{background:#e4dcff}.v-action_required{background:#ffd8b0}
.v-ready{background:#c9f0d2}.v-failed{background:#ffc9c9}.v-cancelled{background:#dcdcdc}
.tiles{display:flex;gap:.5rem;flex-wrap:wrap;margin:.6rem 0 1rem}
.tile{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:.35rem .8rem;text-decoration:none;color:inherit;min-width:6.5rem}
.tile b{display:block;font-size:1.15rem}.tile.on{border-color:#1f5fbf;box-shadow:0 0 0 1px #1f5fbf}
form.filters{display:flex;gap:.6rem;flex-wrap:wrap;align-items:end;background:#fff;border:1px solid #dde1e8;padding:.7rem;border-radius:6px}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;gap:.15rem}
input,select,textarea{font:inherit;padding:.25rem .4rem;border:1px solid #b9c0cc;border-radius:4px}
button,.button{font:inherit;padding:.3rem .8rem;border-radius:4px;border:1px solid #1f5fbf;background:#1f5fbf;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#fff;color:#1f5fbf}
button.danger{background:#b42318;border-color:#b42318}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:1rem}
.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:.8rem 1rem}
.card form{display:flex;flex-direction:column;gap:.4rem;margin:0}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem .9rem;margin:0}dt{color:#5b6475}dd{margin:0}
.notice{background:#e8f3ff;border:1px solid #a9cbf5;padding:.6rem .9rem;border-radius:6px;margin:.6rem 0}
.warn{background:#fff4e5;border-color:#f5c58a}
.error{background:#ffecec;border-color:#f3a3a3}
.muted{color:#6b7280}.small{font-size:.85rem}
.pager{display:flex;gap:.8rem;margin:.8rem 0}
.bidi{unicode-bidi:plaintext}
.mono{unicode-bidi:isolate;white-space:nowrap}td a{white-space:nowrap}
.card form label{display:flex;flex-direction:column;gap:.15rem;font-size:.85rem}
.card form label.check{flex-direction:row;align-items:center;gap:.4rem;font-size:.9rem}
.card form input:not([type=checkbox]),.card form select{width:100%}
.card h3{margin:0 0 .3rem;font-size:1rem}
"#;

/// A localized run status.
pub(crate) fn status_label(l: Lang, status: &str) -> &str {
    match (l, status) {
        (Lang::He, "pending") => "ממתין",
        (Lang::He, "running") => "רץ",
        (Lang::He, "waiting") => "מחכה לאות",
        (Lang::He, "paused") => "מושהה",
        (Lang::He, "succeeded") => "הצליח",
        (Lang::He, "failed") => "נכשל",
        (Lang::He, "cancelled") => "בוטל",
        _ => status,
    }
}

/// A vendor state (`domain::vendor_state`) in the page's language.
pub(crate) fn vendor_state_label(l: Lang, state: VendorState) -> &'static str {
    match (l, state) {
        (Lang::He, VendorState::Onboarding) => "בקליטה",
        (Lang::He, VendorState::AwaitingApproval) => "ממתין לאישור מסוף",
        (Lang::He, VendorState::ActionRequired) => "נדרשת פעולה",
        (Lang::He, VendorState::Ready) => "פעיל",
        (Lang::He, VendorState::Failed) => "נכשל",
        (Lang::He, VendorState::Cancelled) => "בוטל",
        (_, state) => state.as_str(),
    }
}

/// A vendor state as a coloured badge.
pub(crate) fn vendor_state_badge(l: Lang, state: VendorState) -> Markup {
    html! { span class={ "badge v-" (state.as_str()) } data-state=(state.as_str()) { (vendor_state_label(l, state)) } }
}

/// A status as a coloured badge.
pub(crate) fn badge(l: Lang, status: &str) -> Markup {
    html! { span class={ "badge s-" (status) } { (status_label(l, status)) } }
}

/// A time in UTC, to the second.
pub(crate) fn time(at: DateTime<Utc>) -> Markup {
    html! { span.mono dir="ltr" title=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M:%S")) } }
}

/// An optional time, or a dash.
pub(crate) fn maybe_time(at: Option<DateTime<Utc>>) -> Markup {
    match at {
        Some(at) => time(at),
        None => html! { span.muted { "—" } },
    }
}

/// The last eight hex digits of an id (UUIDv7s made in the same millisecond share their first
/// ones; the last are random), the whole id on hover.
pub(crate) fn short(id: Uuid) -> Markup {
    html! { span.mono dir="ltr" title=(id) { (short_text(id)) } }
}

/// The text of [`short`].
pub(crate) fn short_text(id: Uuid) -> String {
    let text = id.simple().to_string();
    text[text.len() - 8..].to_owned()
}

/// A duration in milliseconds, readably.
pub(crate) fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "—".to_owned(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{:.1} min", ms as f64 / 60_000.0),
    }
}

/// An amount in agorot as shekels.
pub(crate) fn shekels(agorot: i64) -> String {
    let sign = if agorot < 0 { "-" } else { "" };
    let agorot = agorot.unsigned_abs();
    format!("{sign}₪{}.{:02}", agorot / 100, agorot % 100)
}

/// The hidden CSRF field every form of a session carries.
pub(crate) fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// The required reason field of every action form.
pub(crate) fn reason_field(l: Lang) -> Markup {
    html! {
        label { (t(l, "Reason"))
            input type="text" name="reason" required maxlength="500"
                placeholder=(t(l, "Why? (required, kept in the audit log)"));
        }
    }
}

/// Adds `key=value` to a query string being built (percent-encoded).
pub(crate) fn push_query(query: &mut String, key: &str, value: &str) {
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(key);
    query.push('=');
    query.push_str(&encode(value));
}

/// Percent-encodes a query value.
pub(crate) fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A whole page with the dashboard's frame.
pub(crate) fn page(
    l: Lang,
    session: Option<&Session>,
    nav: Nav,
    title: &str,
    body: Markup,
) -> Response {
    let (lang, dir) = match l {
        Lang::He => ("he", "rtl"),
        Lang::En => ("en", "ltr"),
    };
    let link = |target: Nav, href: &'static str, label: &'static str| {
        html! { a.on[nav == target] href=(href) { (t(l, label)) } }
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(lang) dir=(dir) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " — vendorflow" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    span.brand { (t(l, "vendorflow operations")) }
                    @if session.is_some() {
                        (link(Nav::Runs, "/admin/runs", "Runs"))
                        (link(Nav::Vendors, "/admin/vendors", "Vendors"))
                        (link(Nav::Webhooks, "/admin/webhooks", "Webhooks"))
                        (link(Nav::Audit, "/admin/audit", "Audit log"))
                    }
                    div.me {
                        @match l {
                            Lang::He => a href="?lang=en" hreflang="en" { "English" },
                            Lang::En => a href="?lang=he" hreflang="he" { "עברית" },
                        }
                        @if let Some(session) = session {
                            span #whoami {
                                (t(l, "Signed in as")) " "
                                b { (t(l, session.role_label())) }
                                " "
                                @if session.token_name.is_empty() { (short(session.token_id)) }
                                @else { span.bidi title=(session.token_id) { (session.token_name) } }
                            }
                            form method="post" action="/admin/logout" {
                                (csrf_field(session))
                                button type="submit" { (t(l, "Sign out")) }
                            }
                        }
                    }
                }
                main {
                    @if let Some(session) = session {
                        @if !session.may_act() {
                            p.notice.small #viewer-notice { (t(l, "You are a viewer: you can see everything but cannot act.")) }
                        }
                    }
                    (body)
                }
            }
        }
    };
    html_response(StatusCode::OK, markup)
}

/// An HTML response that no cache or frame may keep.
pub(crate) fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    response
}

/// Why a dashboard request failed; each renders an HTML page with its status.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PageError {
    /// No valid session: go and sign in.
    #[error("sign in first")]
    SignIn,
    /// 400: a malformed form or query.
    #[error("{0}")]
    BadRequest(String),
    /// 403: a viewer tried to act, or the CSRF token was missing or wrong.
    #[error("{0}")]
    Forbidden(&'static str),
    /// 404: nothing with this id in the marketplace.
    #[error("no {0} with this id in your marketplace")]
    NotFound(&'static str),
    /// 409: the action does not apply now (the message says why).
    #[error("{0}")]
    Conflict(String),
    /// 422: a required field is missing or invalid (the message says which).
    #[error("{0}")]
    Invalid(String),
    /// 503: the database is unavailable.
    #[error("the service is unavailable; try again shortly")]
    Unavailable,
    /// 500: logged, never shown.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl PageError {
    pub(crate) fn internal(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        PageError::Internal(Box::new(error))
    }
}

impl From<sqlx::Error> for PageError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut => PageError::Unavailable,
            other => PageError::internal(other),
        }
    }
}

impl From<store::StoreError> for PageError {
    fn from(error: store::StoreError) -> Self {
        match error {
            store::StoreError::Database(error) => PageError::from(error),
            other => PageError::internal(other),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PageError::SignIn => return Redirect::to("/admin/login").into_response(),
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            PageError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(cause) => {
                tracing::error!(error = %cause, "dashboard request failed");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        // The error page is bilingual: the language extractor is not available here, and the
        // message is short.
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { (status.as_u16()) " — vendorflow" }
                    style { (PreEscaped(STYLE)) }
                }
                body {
                    main {
                        h1 #error-status { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
                        p.notice.error #error-message { (self.to_string()) }
                        p { a href="/admin/runs" { "Runs / הרצות" } }
                    }
                }
            }
        };
        html_response(status, markup)
    }
}

impl From<super::actions::ActionError> for PageError {
    fn from(error: super::actions::ActionError) -> Self {
        use super::actions::ActionError;
        match error {
            ActionError::Invalid { message, .. } => PageError::Invalid(message),
            ActionError::NotFound(what) => PageError::NotFound(what),
            ActionError::Refused(message) => PageError::Conflict(message),
            ActionError::Unavailable => PageError::Unavailable,
            ActionError::Internal(cause) => PageError::Internal(cause),
        }
    }
}
