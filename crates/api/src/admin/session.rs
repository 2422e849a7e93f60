//! Dashboard sessions and CSRF protection.
//!
//! Signing in exchanges a viewer or operator bearer token for a session: a random 256-bit id in
//! an HttpOnly, SameSite=Strict cookie scoped to `/admin`, whose SHA-256 is stored with the token's
//! id, role and marketplace, a CSRF token and an expiry. The bearer token is checked once and kept
//! nowhere. Revoking the token ends its sessions (every lookup joins the token's row).
//!
//! Every form post carries the session's CSRF token in a hidden field, compared in constant time;
//! a post whose `Origin` names another host is refused too. The sign-in form, which has no
//! session yet, uses a double-submit cookie instead.

use axum::extract::{Form, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use domain::errors::Lang;
use maud::html;
use rand::RngExt;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use store::tokens::Role;
use uuid::Uuid;

use super::actions::{self, Channel, Operator};
use super::i18n::{Ui, cookie, t};
use super::views::{Nav, PageError, page};
use crate::AppState;

/// The session cookie.
const SESSION_COOKIE: &str = "vf_session";
/// The sign-in form's double-submit cookie.
const LOGIN_COOKIE: &str = "vf_login";
/// How long a session lasts: a working day.
const SESSION_SECONDS: i64 = 12 * 60 * 60;

/// A signed-in operator or viewer.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) token_id: Uuid,
    /// The token's name (empty when it has none), shown as who is signed in.
    pub(crate) token_name: String,
    pub(crate) marketplace_id: Uuid,
    pub(crate) role: Role,
    /// The synchronizer token every form of this session carries.
    pub(crate) csrf: String,
}

impl Session {
    /// Whether the session may act (operators only).
    pub(crate) fn may_act(&self) -> bool {
        self.role == Role::Operator
    }

    /// The role's label, to translate.
    pub(crate) fn role_label(&self) -> &'static str {
        match self.role {
            Role::Operator => "operator",
            _ => "viewer",
        }
    }

    /// Who acts, for the shared actions and the audit log.
    pub(crate) fn operator(&self) -> Operator {
        Operator {
            token_id: self.token_id,
            marketplace_id: self.marketplace_id,
            role: self.role,
            channel: Channel::Dashboard,
        }
    }

    /// Refuses with 403 unless the session may act.
    pub(crate) fn require_operator(&self) -> Result<Operator, PageError> {
        if self.may_act() {
            Ok(self.operator())
        } else {
            Err(PageError::Forbidden(
                "viewers can see but cannot act: sign in with an operator token",
            ))
        }
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill(&mut bytes);
    hex::encode(bytes)
}

fn hash(id: &str) -> Vec<u8> {
    Sha256::digest(id.as_bytes()).to_vec()
}

/// Compares two strings in time that depends only on their lengths.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// Whether the request came through HTTPS (a TLS-terminating proxy says so), so cookies get
/// `Secure`. Plain HTTP on a laptop (`make run`) must keep working without it.
fn is_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"))
}

fn cookie_header(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

impl FromRequestParts<AppState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let id = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|id| id.len() == 64)
            .ok_or(PageError::SignIn)?;
        let mut conn = state.pool.acquire().await?;
        let row = store::admin::find_session(&mut conn, &hash(id))
            .await?
            .ok_or(PageError::SignIn)?;
        let role = Role::parse(&row.role).ok_or(PageError::SignIn)?;
        Ok(Session {
            token_id: row.token_id,
            token_name: row.token_name,
            marketplace_id: row.marketplace_id,
            role,
            csrf: row.csrf_token,
        })
    }
}

/// Refuses a post whose `Origin` names another host than the one it was sent to.
fn check_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority);
    match (origin_host, host) {
        (Some(origin_host), Some(host)) if origin_host.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(PageError::Forbidden(
            "this form was sent from another site; reload the page and try again",
        )),
    }
}

/// A form posted in a session, its CSRF token checked. Fields keep their order and repeats (the
/// bulk form repeats `run_id`).
pub(crate) struct Posted {
    pub(crate) session: Session,
    fields: Vec<(String, String)>,
}

impl Posted {
    /// The first value of field `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Every value of field `name`, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

impl FromRequest<AppState> for Posted {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        check_origin(&parts.headers)?;
        let request = Request::from_parts(parts, body);
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(|rejection| PageError::BadRequest(rejection.body_text()))?;
        let posted = Posted { session, fields };
        match posted.get("csrf") {
            Some(token) if same(token, &posted.session.csrf) => {}
            _ => {
                return Err(PageError::Forbidden(
                    "the form's CSRF token is missing or wrong; reload the page and try again",
                ));
            }
        }
        let mut controls = domain::errors::ValidationErrors::default();
        for (name, value) in &posted.fields {
            if domain::input::has_forbidden_control(name)
                || domain::input::has_forbidden_control(value)
            {
                controls.push(domain::input::invalid_characters().at(name.clone()));
            }
        }
        if !controls.is_empty() {
            return Err(PageError::Invalid(super::control_characters_message(
                &controls,
            )));
        }
        Ok(posted)
    }
}

fn login_markup(l: Lang, nonce: &str, problem: Option<&str>) -> maud::Markup {
    html! {
        h1 { (t(l, "Sign in to the dashboard")) }
        @if let Some(problem) = problem {
            p.notice.error #login-error { (problem) }
        }
        div.card style="max-width:36rem" {
            form method="post" action="/admin/login" {
                input type="hidden" name="csrf" value=(nonce);
                label { (t(l, "Token"))
                    input #token type="password" name="token" required autocomplete="off" autofocus;
                }
                p.small.muted { (t(l, "Paste an operator or viewer token. It is checked once and never stored in your browser.")) }
                button #sign-in type="submit" { (t(l, "Sign in")) }
            }
        }
    }
}

fn login_response(l: Lang, secure: bool, status: StatusCode, problem: Option<&str>) -> Response {
    let nonce = random_hex();
    let body = login_markup(l, &nonce, problem);
    let mut response = page(l, None, Nav::None, t(l, "Sign in"), body);
    *response.status_mut() = status;
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(LOGIN_COOKIE, &nonce, 1800, secure),
    );
    response
}

/// `GET /admin/login`: the sign-in form.
pub(crate) async fn login_page(Ui(l): Ui, headers: HeaderMap) -> Response {
    login_response(l, is_https(&headers), StatusCode::OK, None)
}

/// `POST /admin/login`: exchanges a viewer or operator token for a session.
pub(crate) async fn login(
    State(state): State<AppState>,
    Ui(l): Ui,
    headers: HeaderMap,
    form: Result<Form<Vec<(String, String)>>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    check_origin(&headers)?;
    let secure = is_https(&headers);
    let Form(fields) = form.map_err(|rejection| PageError::BadRequest(rejection.body_text()))?;
    let field = |name: &str| {
        fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let nonce_ok = match (field("csrf"), cookie(&headers, LOGIN_COOKIE)) {
        (Some(sent), Some(kept)) => same(sent, kept),
        _ => false,
    };
    if !nonce_ok {
        return Err(PageError::Forbidden(
            "the sign-in form expired or was sent from another site; reload it and try again",
        ));
    }
    let token = field("token").map(str::trim).unwrap_or_default();
    let mut conn = state.pool.acquire().await?;
    let owner = if token.is_empty() {
        None
    } else {
        store::tokens::authenticate(&mut conn, &SecretString::from(token.to_owned())).await?
    };
    let owner = match owner {
        Some(owner) if matches!(owner.role, Role::Viewer | Role::Operator) => owner,
        Some(_) => {
            return Ok(login_response(
                l,
                secure,
                StatusCode::FORBIDDEN,
                Some(t(
                    l,
                    "A backend token cannot sign in to the dashboard: use a viewer or operator token.",
                )),
            ));
        }
        None => {
            tracing::warn!("a dashboard sign-in with an unknown or revoked token was refused");
            return Ok(login_response(
                l,
                secure,
                StatusCode::UNAUTHORIZED,
                Some(t(l, "This token is unknown or revoked.")),
            ));
        }
    };
    let id = random_hex();
    let csrf = random_hex();
    store::admin::create_session(
        &mut conn,
        &store::admin::NewSession {
            id_hash: &hash(&id),
            token_id: owner.token_id,
            marketplace_id: owner.marketplace_id,
            role: owner.role.as_str(),
            csrf_token: &csrf,
            ttl_seconds: SESSION_SECONDS,
        },
    )
    .await?;
    // Old sessions are swept here, at the rare moment a new one is made, so the table stays small
    // without a job of its own.
    store::admin::delete_expired_sessions(&mut conn).await?;
    drop(conn);
    let operator = Operator {
        token_id: owner.token_id,
        marketplace_id: owner.marketplace_id,
        role: owner.role,
        channel: Channel::Dashboard,
    };
    actions::record_session(&state.pool, &operator, "sign_in").await?;
    let mut response = Redirect::to("/admin/runs").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, &id, SESSION_SECONDS, secure),
    );
    headers.append(
        header::SET_COOKIE,
        cookie_header(LOGIN_COOKIE, "", 0, secure),
    );
    Ok(response)
}

/// `POST /admin/logout`: ends the session.
pub(crate) async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    posted: Posted,
) -> Result<Response, PageError> {
    if let Some(id) = cookie(&headers, SESSION_COOKIE) {
        let mut conn = state.pool.acquire().await?;
        store::admin::delete_session(&mut conn, &hash(id)).await?;
    }
    actions::record_session(&state.pool, &posted.session.operator(), "sign_out").await?;
    let mut response = Redirect::to("/admin/login").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, "", 0, is_https(&headers)),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_compare_equal_only_when_they_are() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }

    #[test]
    fn a_post_from_another_origin_is_refused_and_one_from_this_host_is_not() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(check_origin(&headers).is_ok());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(check_origin(&headers).is_ok());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(check_origin(&headers).is_err());
        headers.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(check_origin(&headers).is_err());
    }

    #[test]
    fn the_session_cookie_is_http_only_strict_and_scoped_to_the_dashboard() {
        let value = cookie_header(SESSION_COOKIE, "abc", 60, false);
        let text = value.to_str().unwrap();
        assert!(text.contains("HttpOnly"));
        assert!(text.contains("SameSite=Strict"));
        assert!(text.contains("Path=/admin"));
        assert!(!text.contains("Secure"));
        assert!(
            cookie_header(SESSION_COOKIE, "abc", 60, true)
                .to_str()
                .unwrap()
                .contains("; Secure")
        );
    }
}
