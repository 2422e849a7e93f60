//! The vendors pages: the list, and a vendor's onboarding and terminal state, provider
//! organization, masked keys and bank account, runs, charges, documents and audit entries, with
//! the form that supplies lost API keys (encrypted at once, never shown again).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use domain::errors::Lang;
use domain::vendor_state::VendorState;
use maud::{Markup, html};
use secrecy::SecretString;
use serde::Deserialize;
use store::run_queries::{RunCursor, RunFilter};
use store::secrets::{SecretMeta, SecretRef};
use uuid::Uuid;

use super::actions::{self, KeysInput};
use super::i18n::{Ui, t};
use super::session::{Posted, Session};
use super::views::{
    Nav, PageError, badge, csrf_field, encode, page, reason_field, shekels, short, time,
    vendor_state_badge, vendor_state_label,
};
use crate::AppState;
use crate::routes::vendors::decide_state;

/// The vendors list's query.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct VendorsQuery {
    q: Option<String>,
    state: Option<String>,
    cursor: Option<String>,
}

fn present(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// `GET /admin/vendors`.
pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Ui(l): Ui,
    query: Result<Query<VendorsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let Query(query) = query.map_err(|rejection| PageError::BadRequest(rejection.body_text()))?;
    let cursor = present(&query.cursor)
        .map(|text| {
            RunCursor::decode(text)
                .map(|c| store::admin::VendorCursor {
                    created_at: c.created_at,
                    id: c.id,
                })
                .ok_or_else(|| PageError::BadRequest("cursor is not valid".to_owned()))
        })
        .transpose()?;
    let wanted = present(&query.state)
        .map(|text| {
            VendorState::parse(text)
                .ok_or_else(|| PageError::BadRequest("state is not a vendor state".to_owned()))
        })
        .transpose()?;
    let filter = store::admin::VendorFilter {
        search: present(&query.q).map(str::to_owned),
        onboarding_state: None,
        state: wanted.map(|state| state.as_str().to_owned()),
    };
    const PAGE: usize = 50;
    let mut conn = state.pool.acquire().await?;
    let mut vendors = store::admin::list_vendors(
        &mut conn,
        session.marketplace_id,
        &filter,
        cursor,
        PAGE as i64 + 1,
    )
    .await?;
    drop(conn);
    let next = (vendors.len() > PAGE).then(|| {
        vendors.truncate(PAGE);
        vendors.last().map(|v| {
            RunCursor {
                created_at: v.created_at,
                id: v.id,
            }
            .encode()
        })
    });
    let mut base = String::new();
    if let Some(q) = present(&query.q) {
        super::views::push_query(&mut base, "q", q);
    }
    if let Some(s) = present(&query.state) {
        super::views::push_query(&mut base, "state", s);
    }
    let body = html! {
        h1 { (t(l, "Vendors")) }
        form.filters method="get" action="/admin/vendors" {
            label { (t(l, "Search"))
                input name="q" value=(query.q.clone().unwrap_or_default()) placeholder="external id / 515555555 / name";
            }
            label { (t(l, "State"))
                select name="state" {
                    option value="" { (t(l, "any")) }
                    @for s in VendorState::ALL { option value=(s.as_str()) selected[wanted == Some(*s)] { (vendor_state_label(l, *s)) } }
                }
            }
            button type="submit" { (t(l, "Filter")) }
            a.button.secondary href="/admin/vendors" { (t(l, "Clear")) }
        }
        table #vendors style="margin-top:1rem" {
            thead { tr {
                th { (t(l, "External id")) } th { (t(l, "Legal name")) } th { (t(l, "Mode")) }
                th { (t(l, "State")) } th { (t(l, "Keys")) } th { (t(l, "Terminal")) }
                th { (t(l, "Provider organization")) } th { (t(l, "Created")) }
            } }
            tbody {
                @for vendor in &vendors {
                    tr {
                        td { a href={ "/admin/vendors/" (vendor.id) } { span.bidi { (vendor.external_id) } } }
                        td.bidi { (vendor.legal_name) }
                        td { (vendor.mode) }
                        td { (vendor_state_badge(l, decide_state(&vendor.onboarding_state, vendor.run_status.as_deref(), vendor.run_step.as_deref(), vendor.run_status_reason.as_deref()).0)) }
                        td { (vendor.keys_state.clone().unwrap_or_else(|| "—".to_owned())) }
                        td { (vendor.terminal_state.clone().unwrap_or_else(|| "—".to_owned())) }
                        td.mono { (vendor.provider_company_id.map(|id| id.to_string()).unwrap_or_else(|| "—".to_owned())) }
                        td { (time(vendor.created_at)) }
                    }
                }
            }
        }
        @if vendors.is_empty() { p.muted { (t(l, "No vendors match.")) } }
        div.pager {
            @if present(&query.cursor).is_some() { a href={ "/admin/vendors?" (base) } { (t(l, "First page")) } }
            @if let Some(Some(next)) = &next {
                a href={ "/admin/vendors?" (base) @if !base.is_empty() { "&" } "cursor=" (encode(next)) } { (t(l, "Next page")) " →" }
            }
        }
    };
    Ok(page(l, Some(&session), Nav::Vendors, t(l, "Vendors"), body))
}

fn masked(l: Lang, meta: &Option<SecretMeta>, last4: Option<&str>) -> Markup {
    html! {
        @match meta {
            Some(meta) => {
                span.mono { (t(l, "fingerprint")) " " (meta.fingerprint) }
                @if let Some(last4) = meta.last4.as_deref().or(last4) { " · " (t(l, "last digits")) " " span.mono { "…" (last4) } }
            }
            None => {
                @if let Some(last4) = last4 { span.mono { "…" (last4) } } @else { span.muted { (t(l, "not stored")) } }
            }
        }
    }
}

/// `GET /admin/vendors/{id}`.
pub(crate) async fn detail(
    State(state): State<AppState>,
    session: Session,
    Ui(l): Ui,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let id = Uuid::try_parse(&id).map_err(|_| PageError::NotFound("vendor"))?;
    let mut conn = state.pool.acquire().await?;
    let read = store::vendors::find_read(&mut conn, session.marketplace_id, id)
        .await?
        .ok_or(PageError::NotFound("vendor"))?;
    let (vendor_state, state_reason) = decide_state(
        &read.vendor.onboarding_state,
        read.run_status.as_deref(),
        read.run_step.as_deref(),
        read.run_status_reason.as_deref(),
    );
    let onboarding_run = read.run_id;
    let vendor = read.vendor;
    let account = store::provider_records::account(&mut conn, id).await?;
    let secret = |name| SecretRef::new(store::provider_records::VENDOR_SECRETS_TABLE, id, name);
    let meta = |error: store::secrets::SecretsError| PageError::internal(error);
    let api_key = store::secrets::meta(&mut conn, &secret(store::provider_records::API_KEY_SECRET))
        .await
        .map_err(meta)?;
    let public_key = store::secrets::meta(
        &mut conn,
        &secret(store::provider_records::API_PUBLIC_KEY_SECRET),
    )
    .await
    .map_err(meta)?;
    let bank = store::secrets::meta(&mut conn, &secret(crate::secrets::BANK_ACCOUNT_SECRET))
        .await
        .map_err(meta)?;
    let runs = store::run_queries::list(
        &mut conn,
        session.marketplace_id,
        &RunFilter {
            subject_id: Some(id),
            ..RunFilter::default()
        },
        None,
        50,
    )
    .await?;
    let payments = store::admin::payments_for_vendor(&mut conn, id, 50).await?;
    let documents = store::admin::documents_for_vendor(&mut conn, id, 50).await?;
    let audit = store::admin::list_audit(
        &mut conn,
        session.marketplace_id,
        &store::admin::AuditFilter {
            target_id: Some(id),
            action: None,
        },
        None,
        50,
    )
    .await?;
    drop(conn);
    let supplied = params.get("done").is_some_and(|d| d == "supply_api_keys");

    let body = html! {
        h1 { (t(l, "Vendor")) " " span.bidi { (vendor.legal_name) } }
        @if supplied {
            p.notice #flash { (t(l, "Operator action")) ": " code { "supply_api_keys" } " — " (t(l, "done")) }
        }
        div.grid {
            div.card {
                dl #vendor-facts {
                    dt { (t(l, "External id")) } dd.bidi { (vendor.external_id) }
                    dt { (t(l, "Corporate number")) } dd.mono { (vendor.corporate_number) }
                    dt { (t(l, "Mode")) } dd { (vendor.mode) " · " (vendor.business_type) }
                    dt { (t(l, "State")) } dd #vendor-state {
                        (vendor_state_badge(l, vendor_state))
                        @if let Some(run) = onboarding_run { " " a href={ "/admin/runs/" (run) } { (short(run)) } }
                        @if let Some(reason) = &state_reason {
                            br; span.small.mono { (reason.code.as_str()) }
                            br; span.small.bidi #state-reason { (reason.message) }
                            br; span.small.bidi { (reason.action) }
                        }
                    }
                    dt { (t(l, "Provider organization")) } dd.mono { (vendor.provider_company_id.map(|c| c.to_string()).unwrap_or_else(|| "—".to_owned())) }
                    dt { (t(l, "Terminal")) } dd { (account.as_ref().map(|a| a.terminal_state.as_str()).unwrap_or("—")) }
                    dt { (t(l, "Keys")) } dd {
                        (account.as_ref().map(|a| a.keys_state.as_str()).unwrap_or("—"))
                        @if let Some(problem) = account.as_ref().and_then(|a| a.keys_problem.as_deref()) { br; span.small.bidi { (problem) } }
                        @if let Some(at) = account.as_ref().and_then(|a| a.keys_verified_at) { br; span.small { (time(at)) } }
                    }
                    dt { (t(l, "API key")) } dd #api-key-mask { (masked(l, &api_key, None)) }
                    dt { (t(l, "Public key")) } dd { (masked(l, &public_key, None)) }
                    @if vendor.mode == "clearing" {
                        dt { (t(l, "Bank account")) } dd #bank-mask { (masked(l, &bank, vendor.bank_account_last4.as_deref())) }
                    }
                    dt { (t(l, "Created")) } dd { (time(vendor.created_at)) }
                    dt { (t(l, "Updated")) } dd { (time(vendor.updated_at)) }
                }
            }
            @if session.may_act() {
                div.card #supply-keys {
                    h2 style="margin-top:0" { (t(l, "Supply lost API keys")) }
                    p.small.muted { (t(l, "The values are encrypted at once and never shown again. A paused onboarding resumes.")) }
                    form method="post" action={ "/admin/vendors/" (vendor.id) "/api-keys" } autocomplete="off" {
                        (csrf_field(&session))
                        label { (t(l, "Company id"))
                            input name="company_id" inputmode="numeric" required value=(vendor.provider_company_id.map(|c| c.to_string()).unwrap_or_default());
                        }
                        label { (t(l, "API key")) input type="password" name="api_key" required autocomplete="off"; }
                        label { (t(l, "Public key")) input type="password" name="api_public_key" required autocomplete="off"; }
                        label.check { input type="checkbox" name="resume" value="on" checked; (t(l, "Resume")) }
                        (reason_field(l))
                        button type="submit" { (t(l, "Save keys")) }
                    }
                }
            }
        }
        h2 { (t(l, "Runs")) }
        table {
            thead { tr { th { (t(l, "Run")) } th { (t(l, "Workflow")) } th { (t(l, "Status")) } th { (t(l, "Current step")) } th { (t(l, "Created")) } } }
            tbody {
                @for run in &runs {
                    tr {
                        td { a href={ "/admin/runs/" (run.id) } { (short(run.id)) } }
                        td { (run.workflow) }
                        td { (badge(l, run.status.as_str())) }
                        td.mono { (run.step_name) }
                        td { (time(run.created_at)) }
                    }
                }
            }
        }
        h2 { (t(l, "Charges")) }
        @if payments.is_empty() { p.muted { (t(l, "No charges.")) } } @else {
            table {
                thead { tr { th { (t(l, "Order")) } th { (t(l, "Amount")) } th { (t(l, "Result")) } th { "Card" } th { (t(l, "Documents")) } th { (t(l, "Run")) } th { (t(l, "Created")) } } }
                tbody {
                    @for payment in &payments {
                        tr {
                            td.mono { (payment.order_id) }
                            td.num { (shekels(payment.amount_agorot)) }
                            td { @if payment.approved { (t(l, "approved")) " " span.mono { (payment.auth_number.clone().unwrap_or_default()) } } @else { (t(l, "declined")) " " span.small { (payment.decline_description.clone().unwrap_or_default()) } } }
                            td.mono { @if let Some(last4) = &payment.card_last4 { "…" (last4) } }
                            td.mono { (payment.provider_document_id.map(|d| d.to_string()).unwrap_or_default()) }
                            td { @if let Some(run) = payment.run_id { a href={ "/admin/runs/" (run) } { (short(run)) } } }
                            td { (time(payment.created_at)) }
                        }
                    }
                }
            }
        }
        h2 { (t(l, "Documents")) }
        @if documents.is_empty() { p.muted { (t(l, "No documents.")) } } @else {
            table {
                thead { tr { th { (t(l, "Reference")) } th { (t(l, "Number")) } th { (t(l, "Amount")) } th { "Source" } th { (t(l, "Run")) } th { (t(l, "Created")) } } }
                tbody {
                    @for document in &documents {
                        tr {
                            td.mono { (document.reference) }
                            td.mono { (document.document_number.map(|n| n.to_string()).unwrap_or_else(|| document.provider_document_id.to_string())) }
                            td.num { (document.total_agorot.map(shekels).unwrap_or_default()) }
                            td { (document.source) }
                            td { @if let Some(run) = document.run_id { a href={ "/admin/runs/" (run) } { (short(run)) } } }
                            td { (time(document.created_at)) }
                        }
                    }
                }
            }
        }
        h2 { (t(l, "Audit entries")) }
        (super::audit_page::audit_table(l, &audit))
        p.small.muted { (t(l, "times are UTC")) }
    };
    Ok(page(
        l,
        Some(&session),
        Nav::Vendors,
        &vendor.legal_name,
        body,
    ))
}

/// `POST /admin/vendors/{id}/api-keys`: stores lost keys, encrypted at once.
pub(crate) async fn supply_keys(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> Result<Response, PageError> {
    let operator = posted.session.require_operator()?;
    let id = Uuid::try_parse(&id).map_err(|_| PageError::NotFound("vendor"))?;
    let input = KeysInput {
        company_id: posted.get("company_id").map(str::to_owned),
        api_key: SecretString::from(posted.get("api_key").unwrap_or_default().to_owned()),
        api_public_key: SecretString::from(
            posted.get("api_public_key").unwrap_or_default().to_owned(),
        ),
        resume: posted.get("resume") == Some("on"),
    };
    actions::supply_keys(
        &state.pool,
        &state.keyring,
        &operator,
        id,
        input,
        posted.get("reason"),
    )
    .await?;
    Ok(Redirect::to(&format!("/admin/vendors/{id}?done=supply_api_keys")).into_response())
}
