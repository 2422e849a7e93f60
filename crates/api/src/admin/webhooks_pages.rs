//! The webhooks page: the marketplace's endpoints with their backlog and dead letters, the
//! deliveries (filtered by endpoint and status, newest first) and their replay.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use store::webhooks::{DeliveryFilter, DeliveryStatus, Page, WebhookStoreError};
use uuid::Uuid;

use super::actions;
use super::i18n::{Ui, t};
use super::session::{Posted, Session};
use super::views::{Nav, PageError, csrf_field, maybe_time, page, push_query, short, time};
use crate::AppState;

impl From<WebhookStoreError> for PageError {
    fn from(error: WebhookStoreError) -> Self {
        match error {
            WebhookStoreError::Database(error) => PageError::from(error),
            other => PageError::internal(other),
        }
    }
}

/// The webhooks page's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct WebhooksQuery {
    endpoint: Option<String>,
    /// `dead` (default), `pending`, `delivered` or `all`.
    status: Option<String>,
    before: Option<String>,
    done: Option<String>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /admin/webhooks`.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Ui(l): Ui,
    query: Result<Query<WebhooksQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|rejection| PageError::BadRequest(rejection.body_text()))?;
    let status_word = present(&query.status).unwrap_or("dead");
    let status = match status_word {
        "all" => None,
        word => Some(DeliveryStatus::parse(word).ok_or_else(|| {
            PageError::BadRequest("status must be dead, pending, delivered or all".to_owned())
        })?),
    };
    let endpoint = present(&query.endpoint)
        .map(|text| {
            Uuid::try_parse(text)
                .map_err(|_| PageError::BadRequest("endpoint must be a uuid".to_owned()))
        })
        .transpose()?;
    let before = present(&query.before)
        .map(|text| {
            Uuid::try_parse(text)
                .map_err(|_| PageError::BadRequest("before is not valid".to_owned()))
        })
        .transpose()?;
    let mut conn = state.pool.acquire().await?;
    let endpoints = store::webhooks::list_endpoints(&mut conn, session.marketplace_id).await?;
    let backlog = store::admin::delivery_backlog(&mut conn, session.marketplace_id).await?;
    let deliveries = store::webhooks::list_deliveries(
        &mut conn,
        session.marketplace_id,
        &DeliveryFilter {
            status,
            endpoint_id: endpoint,
            ..DeliveryFilter::default()
        },
        Page { limit: 50, before },
    )
    .await?;
    drop(conn);
    let mut base = String::new();
    push_query(&mut base, "status", status_word);
    if let Some(endpoint) = endpoint {
        push_query(&mut base, "endpoint", &endpoint.to_string());
    }
    let replayed = present(&query.done) == Some("replay");
    let body = html! {
        h1 { (t(l, "Webhooks")) }
        @if replayed { p.notice #flash { (t(l, "Operator action")) ": " code { "replay_delivery" } " — " (t(l, "done")) } }
        h2 { (t(l, "Endpoints")) }
        @if endpoints.is_empty() { p.muted { (t(l, "No endpoints.")) } } @else {
            table #endpoints {
                thead { tr { th { "URL" } th { (t(l, "Event type")) } th { (t(l, "Status")) } th { (t(l, "Pending")) } th { (t(l, "Dead letters")) } } }
                tbody {
                    @for endpoint in &endpoints {
                        @let counts = backlog.iter().find(|(id, _, _)| *id == endpoint.id);
                        tr {
                            td.mono { (endpoint.url) }
                            td.small { (endpoint.event_types.as_ref().map(|types| types.join(", ")).unwrap_or_else(|| "*".to_owned())) }
                            td { @if endpoint.enabled { (t(l, "enabled")) } @else { (t(l, "disabled")) " " span.small { (endpoint.disabled_reason.clone().unwrap_or_default()) } } }
                            td.num { a href={ "/admin/webhooks?status=pending&endpoint=" (endpoint.id) } { (counts.map(|c| c.1).unwrap_or(0)) } }
                            td.num { a href={ "/admin/webhooks?status=dead&endpoint=" (endpoint.id) } { (counts.map(|c| c.2).unwrap_or(0)) } }
                        }
                    }
                }
            }
        }
        h2 { (t(l, "Deliveries")) }
        form.filters method="get" action="/admin/webhooks" {
            label { (t(l, "Status"))
                select name="status" {
                    @for word in ["dead", "pending", "delivered", "all"] { option value=(word) selected[word == status_word] { (word) } }
                }
            }
            label { "Endpoint"
                select name="endpoint" {
                    option value="" { (t(l, "any")) }
                    @for e in &endpoints { option value=(e.id) selected[Some(e.id) == endpoint] { (e.url) } }
                }
            }
            button type="submit" { (t(l, "Filter")) }
        }
        table #deliveries style="margin-top:1rem" {
            thead { tr {
                th { "id" } th { (t(l, "Event type")) } th { (t(l, "Status")) } th { (t(l, "Attempts")) }
                th { (t(l, "Last answer")) } th { (t(l, "Next run")) } th { (t(l, "Created")) }
                @if session.may_act() { th { (t(l, "Replay")) } }
            } }
            tbody {
                @for delivery in &deliveries.items {
                    tr data-delivery-id=(delivery.id) {
                        td { (short(delivery.id)) }
                        td.mono { (delivery.event_type) }
                        td { span class={ "badge d-" (delivery.status) } { (delivery.status) } }
                        td.num { (delivery.attempt) }
                        td.small {
                            @if let Some(code) = delivery.last_status_code { "HTTP " (code) " " }
                            (delivery.last_error.clone().unwrap_or_default())
                            @if let Some(at) = delivery.last_attempt_at { br; (time(at)) }
                        }
                        td { (maybe_time(delivery.next_attempt_at)) }
                        td { (time(delivery.created_at)) }
                        @if session.may_act() {
                            td {
                                @if delivery.status != "pending" {
                                    form method="post" action={ "/admin/webhooks/deliveries/" (delivery.id) "/replay" } style="display:flex;gap:.3rem" {
                                        (csrf_field(&session))
                                        input name="reason" required maxlength="500" placeholder=(t(l, "Reason")) size="14";
                                        button type="submit" { (t(l, "Replay")) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if deliveries.items.is_empty() { p.muted { (t(l, "No deliveries.")) } }
        div.pager {
            @if before.is_some() { a href={ "/admin/webhooks?" (base) } { (t(l, "First page")) } }
            @if let Some(next) = deliveries.next_cursor { a href={ "/admin/webhooks?" (base) "&before=" (next) } { (t(l, "Next page")) " →" } }
        }
    };
    Ok(page(
        l,
        Some(&session),
        Nav::Webhooks,
        t(l, "Webhooks"),
        body,
    ))
}

/// `POST /admin/webhooks/deliveries/{id}/replay`.
pub(crate) async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let operator = posted.session.require_operator()?;
    let id = Uuid::try_parse(&id).map_err(|_| PageError::NotFound("delivery"))?;
    actions::replay_delivery(&state.pool, &operator, id, posted.get("reason")).await?;
    Ok(Redirect::to("/admin/webhooks?status=pending&done=replay").into_response())
}
