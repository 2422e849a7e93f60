//! The audit log page, and the audit table the run and vendor pages embed.

use axum::extract::{Query, State};
use axum::response::Response;
use domain::errors::Lang;
use maud::{Markup, html};
use serde::Deserialize;
use store::admin::{AuditFilter, AuditRow};
use uuid::Uuid;

use super::i18n::{Ui, t};
use super::session::Session;
use super::views::{Nav, PageError, page, push_query, short, time};
use crate::AppState;

/// A link to an audit entry's target.
fn target(row: &AuditRow) -> Markup {
    match (row.target_kind.as_str(), row.target_id) {
        ("run", Some(id)) => html! { "run " a href={ "/admin/runs/" (id) } { (short(id)) } },
        ("vendor", Some(id)) => {
            html! { "vendor " a href={ "/admin/vendors/" (id) } { (short(id)) } }
        }
        ("delivery", Some(id)) => html! { "delivery " (short(id)) },
        ("endpoint", Some(id)) => html! { "webhook endpoint " (short(id)) },
        (kind, _) => html! { (kind) },
    }
}

/// Who acted: their name (the token's, or the command line's actor) and role, with the token's
/// id on hover; an unnamed token by a fragment of its id.
fn who(row: &AuditRow) -> Markup {
    match (&row.actor, row.token_id) {
        (Some(actor), Some(token)) => {
            html! { span.bidi title=(token) { (actor) } " (" (row.role) ")" }
        }
        (Some(actor), None) => html! { span.bidi { (actor) } " (" (row.role) ")" },
        (None, Some(token)) => html! { (row.role) " " (short(token)) },
        (None, None) => html! { (row.role) },
    }
}

/// Audit entries as a table.
pub(crate) fn audit_table(l: Lang, rows: &[AuditRow]) -> Markup {
    html! {
        @if rows.is_empty() { p.muted.audit-empty { (t(l, "No audit entries.")) } } @else {
            table.audit {
                thead { tr {
                    th { (t(l, "When")) } th { (t(l, "Who")) } th { (t(l, "Channel")) } th { (t(l, "Action")) }
                    th { (t(l, "Target")) } th { (t(l, "Reason")) } th { (t(l, "Result")) } th { (t(l, "Detail")) }
                } }
                tbody {
                    @for row in rows {
                        tr data-action=(row.action) data-result=(row.result) {
                            td { (time(row.at)) }
                            td.small.who { (who(row)) }
                            td.small { (row.channel) }
                            td.mono { (row.action) }
                            td.small { (target(row)) }
                            td.bidi { (row.reason.clone().unwrap_or_default()) }
                            td { @if row.result == "ok" { (t(l, "done")) } @else { strong { (t(l, "refused")) } } }
                            td.small.bidi { (row.detail.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    }
}

/// The audit page's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AuditQuery {
    target: Option<String>,
    action: Option<String>,
    before: Option<String>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /admin/audit`.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Ui(l): Ui,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|rejection| PageError::BadRequest(rejection.body_text()))?;
    let target_id = present(&query.target)
        .map(|text| {
            Uuid::try_parse(text)
                .map_err(|_| PageError::BadRequest("target must be a uuid".to_owned()))
        })
        .transpose()?;
    let before = present(&query.before)
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| PageError::BadRequest("before must be a number".to_owned()))
        })
        .transpose()?;
    const PAGE: usize = 100;
    let mut conn = state.pool.acquire().await?;
    let mut rows = store::admin::list_audit(
        &mut conn,
        session.marketplace_id,
        &AuditFilter {
            target_id,
            action: present(&query.action).map(str::to_owned),
        },
        before,
        PAGE as i64 + 1,
    )
    .await?;
    drop(conn);
    let next = (rows.len() > PAGE).then(|| {
        rows.truncate(PAGE);
        rows.last().map(|row| row.id)
    });
    let mut base = String::new();
    if let Some(target) = present(&query.target) {
        push_query(&mut base, "target", target);
    }
    if let Some(action) = present(&query.action) {
        push_query(&mut base, "action", action);
    }
    let body = html! {
        h1 { (t(l, "Audit log")) }
        form.filters method="get" action="/admin/audit" {
            label { (t(l, "Target")) input name="target" value=(query.target.clone().unwrap_or_default()) placeholder="uuid" size="36"; }
            label { (t(l, "Action")) input name="action" value=(query.action.clone().unwrap_or_default()) placeholder="resume" size="14"; }
            button type="submit" { (t(l, "Filter")) }
            a.button.secondary href="/admin/audit" { (t(l, "Clear")) }
        }
        div #audit style="margin-top:1rem" { (audit_table(l, &rows)) }
        div.pager {
            @if before.is_some() { a href={ "/admin/audit?" (base) } { (t(l, "First page")) } }
            @if let Some(Some(next)) = next { a href={ "/admin/audit?" (base) @if !base.is_empty() { "&" } "before=" (next) } { (t(l, "Next page")) " →" } }
            span.muted.small { (t(l, "times are UTC")) }
        }
    };
    Ok(page(l, Some(&session), Nav::Audit, t(l, "Audit log"), body))
}
