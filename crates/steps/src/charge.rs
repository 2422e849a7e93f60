//! The steps of `vendor_charge` (and the vendor check and wait that `vendor_document` shares):
//! check the vendor, wait until it is ready, charge the customer once per order, and conclude
//! with `charge.succeeded` or a `declined` outcome.

use chrono::{Duration as Days, Utc};
use domain::envelope::ErrorEnvelope;
use engine::{
    OutboxEvent, PollHandler, PollOutcome, ReconcileOutcome, StepContext, StepHandler, StepOutcome,
    StepSuccess,
};
use futures::future::BoxFuture;
use providers::sumit::{
    ApprovedCharge, ChargeOutcome, ChargeRequest, Credentials, Customer, LineItem, Payment,
    PaymentLookup, SearchMode,
};
use providers::{ProviderError, RejectionKind};
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use std::sync::Arc;
use store::provider_records::{self, KeysState};
use uuid::Uuid;

use crate::input::{ChargeInput, CustomerInput};
use crate::writes::{ChargeDocument, RecordCharge, SignalOwnWait, compact};
use crate::{StepsConfig, doubt, events, failure, keys};

pub(crate) type Step<T> = Result<T, StepOutcome>;

/// The business outcome of a declined charge, declared by `workflows/vendor_charge.toml`.
pub const DECLINED_OUTCOME: &str = "declined";

pub(crate) async fn connection(
    ctx: &StepContext,
) -> Step<sqlx::pool::PoolConnection<sqlx::Postgres>> {
    ctx.pool.acquire().await.map_err(|e| failure::database(&e))
}

/// Parses the run's input as `T`.
pub(crate) fn parse<T: for<'de> Deserialize<'de>>(ctx: &StepContext) -> Step<T> {
    serde_json::from_value((*ctx.input).clone()).map_err(|e| failure::bad_input(ctx, &e))
}

#[derive(Deserialize)]
struct VendorRef {
    vendor_id: Uuid,
}

/// What a charge or document needs its vendor to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    /// A card charge: a clearing vendor with an approved terminal.
    Charge,
    /// A document: any vendor whose organization's keys work.
    Document,
}

/// The organization and credentials of a vendor that is ready for `purpose`; a vendor that is
/// not (an operator moved the run past its wait) pauses the run.
pub(crate) async fn ready_vendor(
    conn: &mut PgConnection,
    config: &StepsConfig,
    vendor_id: Uuid,
    purpose: Purpose,
) -> Step<(i64, Credentials)> {
    let vendor = provider_records::vendor(conn, vendor_id)
        .await
        .map_err(|e| failure::database(&e))?
        .ok_or_else(|| {
            failure::fatal(
                "vendor_not_found",
                format!("vendor {vendor_id} does not exist"),
            )
        })?;
    if purpose == Purpose::Charge && vendor.mode != "clearing" {
        return Err(not_clearing(vendor_id));
    }
    if vendor.onboarding_state != "ready" {
        return Err(StepOutcome::Pause {
            reason: format!(
                "vendor {vendor_id} is not ready (its onboarding is `{}`); resume this run once it is",
                vendor.onboarding_state
            ),
        });
    }
    let account = provider_records::account(conn, vendor_id)
        .await
        .map_err(|e| failure::database(&e))?;
    let Some((company_id, KeysState::Active)) = account
        .as_ref()
        .and_then(|a| a.company_id.map(|id| (id, a.keys_state)))
    else {
        return Err(StepOutcome::Pause {
            reason: format!(
                "vendor {vendor_id} has no active SUMIT keys; an operator must supply them and \
                 resume the vendor's onboarding, then resume this run"
            ),
        });
    };
    let credentials = keys::credentials(conn, &config.keyring, vendor_id, company_id)
        .await
        .map_err(|e| failure::secret(&e))?
        .ok_or_else(|| StepOutcome::Pause {
            reason: format!(
                "the SUMIT keys of vendor {vendor_id} are not stored; supply them, then resume"
            ),
        })?;
    Ok((company_id, credentials))
}

fn not_clearing(vendor_id: Uuid) -> StepOutcome {
    failure::fatal(
        "vendor_not_clearing",
        format!("vendor {vendor_id} is documents-only: it takes no card payments"),
    )
}

/// The provider customer of a charge or document.
pub(crate) fn customer(input: &CustomerInput) -> Customer {
    Customer {
        id: None,
        name: Some(input.name.clone()),
        email_address: input.email.clone(),
        phone: input.phone.clone(),
        company_number: input.company_number.clone(),
        external_identifier: input.external_id.clone(),
        search_mode: Some(SearchMode::Automatic),
        no_vat: None,
    }
}

/// At most the last four digits of a card, or nothing.
fn last4(digits: Option<&str>) -> Option<String> {
    let digits: String = digits?.chars().filter(char::is_ascii_digit).collect();
    let start = digits.len().saturating_sub(4);
    let tail = &digits[start..];
    (!tail.is_empty()).then(|| tail.to_owned())
}

/// Step `check_vendor` of the charge and document workflows: the vendor exists and suits the
/// purpose; if it is ready already, the run signals its own wait for it, so the wait completes
/// at once; otherwise the wait completes when the onboarding's last step signals it (or its poll
/// sees the vendor ready).
pub(crate) struct CheckVendor {
    purpose: Purpose,
}

impl CheckVendor {
    pub(crate) fn new(purpose: Purpose) -> Self {
        Self { purpose }
    }

    async fn execute_inner(&self, ctx: &StepContext) -> Step<StepOutcome> {
        let VendorRef { vendor_id } = parse(ctx)?;
        let mut conn = connection(ctx).await?;
        let vendor = provider_records::vendor(&mut conn, vendor_id)
            .await
            .map_err(|e| failure::database(&e))?
            .ok_or_else(|| {
                failure::fatal(
                    "vendor_not_found",
                    format!("vendor {vendor_id} does not exist"),
                )
            })?;
        if self.purpose == Purpose::Charge && vendor.mode != "clearing" {
            return Err(not_clearing(vendor_id));
        }
        let ready = vendor.onboarding_state == "ready";
        let success = StepSuccess::new(json!({
            "vendor_check": {"ready": ready, "onboarding_state": vendor.onboarding_state}
        }));
        Ok(StepOutcome::Success(if ready {
            success.with_write(SignalOwnWait {
                run_id: ctx.run_id.0,
                step: crate::AWAIT_VENDOR_STEP.to_owned(),
            })
        } else {
            success
        }))
    }
}

impl StepHandler for CheckVendor {
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move { self.execute_inner(ctx).await.unwrap_or_else(|o| o) })
    }

    /// A read of our own database: simply repeated.
    fn reconcile<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        Box::pin(async { ReconcileOutcome::NotApplied })
    }
}

/// Poll `vendor_onboarding_state` of the wait `await_vendor_ready`: ready when the vendor's
/// onboarding state is `ready` (a fallback for a signal that never came).
pub(crate) struct VendorReadyPoll;

impl PollHandler for VendorReadyPoll {
    fn poll<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, PollOutcome> {
        Box::pin(async move {
            let Ok(VendorRef { vendor_id }) = parse(ctx) else {
                return PollOutcome::Failed(ErrorEnvelope::fatal(
                    "invalid_input",
                    "the run's input has no vendor_id",
                ));
            };
            let state = match ctx.pool.acquire().await {
                Ok(mut conn) => provider_records::vendor(&mut conn, vendor_id).await,
                Err(e) => Err(e),
            };
            match state {
                Ok(Some(v)) if v.onboarding_state == "ready" => {
                    PollOutcome::Ready(StepSuccess::new(json!({"vendor_ready": {"by": "poll"}})))
                }
                Ok(_) => PollOutcome::NotYet,
                Err(e) => PollOutcome::Failed(ErrorEnvelope::retryable(
                    "database_unavailable",
                    format!("reading the vendor's state failed: {e}"),
                )),
            }
        })
    }
}

/// What looking a charge up by its order id found.
enum Lookup {
    Found(Payment),
    /// A payment for the order that another run of ours recorded (the marketplace charged the
    /// order again after a decline, say): not this run's charge.
    OtherRun(Payment),
    NotFound,
    Indeterminate(usize),
    Failed(ProviderError),
}

/// Step `charge`: charges the customer on the vendor's terminal with the single-use token, the
/// order id as the provider's `UniqueIdentifier`. A decline is a result, not an error: it is
/// recorded and `conclude` ends the run as `declined`.
pub(crate) struct ChargeCustomer {
    config: Arc<StepsConfig>,
}

impl ChargeCustomer {
    pub(crate) fn new(config: Arc<StepsConfig>) -> Self {
        Self { config }
    }

    fn request(input: &ChargeInput) -> ChargeRequest {
        let items = match &input.items {
            Some(items) => items
                .iter()
                .map(|i| LineItem {
                    name: i.name.clone(),
                    sku: i.sku.clone(),
                    quantity: i.quantity,
                    unit_price_agorot: i.unit_price_agorot,
                    description: i.description.clone(),
                })
                .collect(),
            None => vec![LineItem {
                name: input
                    .description
                    .clone()
                    .unwrap_or_else(|| format!("Order {}", input.order_id)),
                sku: None,
                quantity: 1,
                unit_price_agorot: input.amount_agorot,
                description: None,
            }],
        };
        ChargeRequest {
            customer: customer(&input.customer),
            single_use_token: SecretString::from(input.single_use_token.clone()),
            items,
            // The amount is what the customer pays: prices include VAT.
            vat_included: true,
            document_type: None,
            document_description: input.description.clone(),
            document_language: None,
            send_document_by_email: input.send_document_by_email,
            payments_count: input.installments,
            authorise_only: false,
            external_identifier: Some(input.order_id.clone()),
        }
    }

    /// Looks the charge up by order id among the payments dated from the day before the run
    /// was created through tomorrow (the provider's dates are Israel's).
    async fn find(
        &self,
        ctx: &StepContext,
        credentials: &Credentials,
        vendor_id: Uuid,
        order_id: &str,
    ) -> Lookup {
        let created = match ctx.pool.acquire().await {
            Ok(mut conn) => store::runs::get(&mut conn, ctx.run_id.0)
                .await
                .ok()
                .flatten()
                .map(|r| r.created_at),
            Err(_) => None,
        };
        let from = (created.unwrap_or_else(Utc::now) - Days::days(2)).date_naive();
        let to = (Utc::now() + Days::days(1)).date_naive();
        match self
            .config
            .provider
            .find_payment_by_external_identifier(credentials, order_id, from, to)
            .await
        {
            Ok(PaymentLookup::Found(payment)) => {
                let recorded = match ctx.pool.acquire().await {
                    Ok(mut conn) => {
                        provider_records::payments_for_order(&mut conn, vendor_id, order_id).await
                    }
                    Err(e) => Err(e),
                };
                match recorded {
                    Ok(rows)
                        if rows.iter().any(|r| {
                            r.provider_payment_id == payment.id && r.run_id != Some(ctx.run_id.0)
                        }) =>
                    {
                        Lookup::OtherRun(payment)
                    }
                    Ok(_) => Lookup::Found(payment),
                    Err(e) => Lookup::Failed(ProviderError::Retryable {
                        endpoint: "vendorflow.vendor_payments",
                        reason: format!("reading the order's recorded payments failed: {e}"),
                        retry_after: None,
                    }),
                }
            }
            Ok(PaymentLookup::NotFound) => Lookup::NotFound,
            Ok(PaymentLookup::Indeterminate {
                rows_without_identifier,
            }) => Lookup::Indeterminate(rows_without_identifier),
            Err(error) => Lookup::Failed(error),
        }
    }

    fn indeterminate_reason(input: &ChargeInput, rows: usize) -> String {
        format!(
            "a charge for order {} of vendor {} may have gone through (its answer was lost), and \
             SUMIT's payment list cannot tell: {rows} payment(s) in the period do not say which \
             order they belong to. Check the vendor's payments at SUMIT. If the order was charged, \
             cancel this run and reconcile the order by hand; if it was not, resume this run from \
             the step `charge` (a plain resume looks again and pauses again)",
            input.order_id, input.vendor_id
        )
    }

    async fn execute_inner(&self, ctx: &StepContext) -> Step<StepOutcome> {
        let input: ChargeInput = parse(ctx)?;
        // The amount ceiling is the API's setting, applied when the request was admitted; here
        // the input's own rules and overflow-checked sums are enough.
        input
            .validate(i64::MAX)
            .map_err(|errors| failure::fatal("invalid_input", errors.to_string()))?;
        let (company_id, credentials, in_doubt) = {
            let mut conn = connection(ctx).await?;
            let (company_id, credentials) =
                ready_vendor(&mut conn, &self.config, input.vendor_id, Purpose::Charge).await?;
            let earlier =
                provider_records::payments_for_order(&mut conn, input.vendor_id, &input.order_id)
                    .await
                    .map_err(|e| failure::database(&e))?;
            if let Some(paid) = earlier.iter().find(|p| p.approved) {
                return Err(failure::fatal(
                    "order_already_charged",
                    format!(
                        "order {} of vendor {} was already charged (SUMIT payment {}{}); no second \
                         charge was attempted",
                        input.order_id,
                        input.vendor_id,
                        paid.provider_payment_id,
                        paid.run_id
                            .map(|r| format!(", run {r}"))
                            .unwrap_or_default()
                    ),
                ));
            }
            let in_doubt = doubt::earlier_attempt_in_doubt(&mut conn, ctx)
                .await
                .map_err(|e| failure::database(&e))?;
            (company_id, credentials, in_doubt)
        };
        if in_doubt {
            match self
                .find(ctx, &credentials, input.vendor_id, &input.order_id)
                .await
            {
                Lookup::Found(payment) => {
                    return Ok(StepOutcome::Success(found(
                        ctx, &input, company_id, payment,
                    )));
                }
                Lookup::OtherRun(payment) if payment.valid => {
                    return Err(failure::fatal(
                        "order_already_charged",
                        format!(
                            "order {} of vendor {} was already charged by another run (SUMIT \
                             payment {}); no second charge was attempted",
                            input.order_id, input.vendor_id, payment.id
                        ),
                    ));
                }
                // Another run's decline for the same order says nothing about this run's charge.
                Lookup::NotFound | Lookup::OtherRun(_) => {}
                Lookup::Indeterminate(rows) => {
                    return Ok(StepOutcome::Pause {
                        reason: Self::indeterminate_reason(&input, rows),
                    });
                }
                Lookup::Failed(error) => {
                    return Ok(StepOutcome::Retryable {
                        error: ErrorEnvelope::retryable(
                            "charge_lookup_failed",
                            format!(
                                "an earlier attempt may have charged order {}, and looking it up \
                                 failed: {error}",
                                input.order_id
                            ),
                        ),
                        retry_after: error.retry_after(),
                    });
                }
            }
        }
        Ok(
            match self
                .config
                .provider
                .charge(&credentials, &Self::request(&input))
                .await
            {
                Ok(ChargeOutcome::Approved(charge)) => {
                    StepOutcome::Success(approved(ctx, &input, company_id, charge))
                }
                Ok(ChargeOutcome::Declined {
                    code,
                    description,
                    payment_id,
                }) => StepOutcome::Success(declined(
                    ctx,
                    &input,
                    company_id,
                    Decline {
                        code,
                        description,
                        payment_id,
                    },
                    "answer",
                )),
                // A technical refusal of a charge can follow a debit (providers' error docs):
                // look the charge up before anything else.
                Err(
                    error @ ProviderError::Rejected {
                        kind: RejectionKind::Technical,
                        ..
                    },
                ) => StepOutcome::Unknown(failure::envelope(&error)),
                Err(error) => failure::provider_outcome(&error),
            },
        )
    }

    async fn reconcile_inner(&self, ctx: &StepContext) -> ReconcileOutcome {
        let Ok(input) = parse::<ChargeInput>(ctx) else {
            return engine::handler::cannot_know(ctx);
        };
        let account = match ctx.pool.acquire().await {
            Ok(mut conn) => match provider_records::account(&mut conn, input.vendor_id).await {
                Ok(Some(a)) => match a.company_id {
                    Some(id) => {
                        keys::credentials(&mut conn, &self.config.keyring, input.vendor_id, id)
                            .await
                            .ok()
                            .flatten()
                            .map(|c| (id, c))
                    }
                    None => None,
                },
                _ => None,
            },
            Err(_) => None,
        };
        // Without keys nothing can be looked up now; the next attempt knows it is in doubt and
        // looks again before charging (see `doubt`).
        let Some((company_id, credentials)) = account else {
            return ReconcileOutcome::NotApplied;
        };
        match self
            .find(ctx, &credentials, input.vendor_id, &input.order_id)
            .await
        {
            Lookup::Found(payment) => {
                ReconcileOutcome::Applied(found(ctx, &input, company_id, payment))
            }
            Lookup::Indeterminate(rows) => ReconcileOutcome::CannotKnow {
                reason: Self::indeterminate_reason(&input, rows),
            },
            // The next attempt knows it is in doubt and looks again before charging.
            Lookup::NotFound | Lookup::OtherRun(_) | Lookup::Failed(_) => {
                ReconcileOutcome::NotApplied
            }
        }
    }
}

impl StepHandler for ChargeCustomer {
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move { self.execute_inner(ctx).await.unwrap_or_else(|o| o) })
    }

    fn reconcile<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        Box::pin(self.reconcile_inner(ctx))
    }
}

/// An approved charge: its payment and document recorded with the step.
fn approved(
    ctx: &StepContext,
    input: &ChargeInput,
    company_id: i64,
    charge: ApprovedCharge,
) -> StepSuccess {
    let p = &charge.payment;
    if p.amount_agorot != input.amount_agorot {
        tracing::warn!(
            run_id = %ctx.run_id,
            charged = p.amount_agorot,
            asked = input.amount_agorot,
            "the provider charged another amount than the order's"
        );
    }
    let card_last4 = last4(p.card_last_digits.as_deref());
    let output = compact(json!({
        "result": "approved",
        "found_by": "answer",
        "order_id": input.order_id,
        "payment_id": p.id,
        "amount_agorot": p.amount_agorot,
        "auth_number": p.auth_number,
        "card_last4": card_last4,
        "document_id": charge.document_id,
        "document_number": charge.document_number,
        "document_url": charge.document_download_url,
    }));
    StepSuccess::new(json!({ "charge": output })).with_write(RecordCharge {
        vendor_id: input.vendor_id,
        run_id: ctx.run_id.0,
        order_id: input.order_id.clone(),
        company_id,
        payment_id: p.id,
        approved: true,
        amount_agorot: p.amount_agorot,
        auth_number: p.auth_number.clone(),
        card_last4,
        decline_code: None,
        decline_description: None,
        document: charge.document_id.map(|document_id| ChargeDocument {
            document_id,
            document_number: charge.document_number,
            download_url: charge.document_download_url.clone(),
        }),
    })
}

struct Decline {
    code: Option<String>,
    description: String,
    payment_id: Option<i64>,
}

/// A declined charge: recorded (when the provider gave it an id) for `conclude` to end the run.
fn declined(
    ctx: &StepContext,
    input: &ChargeInput,
    company_id: i64,
    decline: Decline,
    found_by: &str,
) -> StepSuccess {
    let output = compact(json!({
        "result": DECLINED_OUTCOME,
        "found_by": found_by,
        "order_id": input.order_id,
        "payment_id": decline.payment_id,
        "decline_code": decline.code,
        "decline_description": decline.description,
    }));
    let success = StepSuccess::new(json!({ "charge": output }));
    match decline.payment_id {
        Some(payment_id) => success.with_write(RecordCharge {
            vendor_id: input.vendor_id,
            run_id: ctx.run_id.0,
            order_id: input.order_id.clone(),
            company_id,
            payment_id,
            approved: false,
            amount_agorot: input.amount_agorot,
            auth_number: None,
            card_last4: None,
            decline_code: decline.code,
            decline_description: Some(decline.description),
            document: None,
        }),
        None => success,
    }
}

/// A charge found by its order id after its answer was lost. The payment list does not name the
/// document the charge issued, so none is recorded.
fn found(ctx: &StepContext, input: &ChargeInput, company_id: i64, payment: Payment) -> StepSuccess {
    if payment.valid {
        let mut success = approved(
            ctx,
            input,
            company_id,
            ApprovedCharge {
                document_id: None,
                document_number: None,
                customer_id: payment.customer_id,
                document_download_url: None,
                payment,
            },
        );
        if let Some(charge) = success.output.get_mut("charge") {
            charge["found_by"] = json!("lookup");
        }
        success
    } else {
        declined(
            ctx,
            input,
            company_id,
            Decline {
                code: payment.decline_code(),
                description: payment
                    .status_description
                    .clone()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
                payment_id: Some(payment.id),
            },
            "lookup",
        )
    }
}

/// Step `conclude`: tells the marketplace how the charge ended — `charge.succeeded`, or
/// `charge.declined` with the run ending as `declined`.
pub(crate) struct ConcludeCharge;

impl ConcludeCharge {
    fn conclude(ctx: &StepContext) -> Step<StepOutcome> {
        let input: ChargeInput = parse(ctx)?;
        let Some(Value::Object(charge)) = ctx.context.get("charge") else {
            return Err(StepOutcome::Pause {
                reason:
                    "the run's context holds no charge result; resume it from the step `charge`"
                        .to_owned(),
            });
        };
        let mut payload = json!({
            "run_id": ctx.run_id,
            "vendor_id": input.vendor_id,
            "order_id": input.order_id,
        });
        if let Value::Object(p) = &mut payload {
            for (k, v) in charge {
                if k != "result" {
                    p.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        Ok(match charge.get("result").and_then(Value::as_str) {
            Some("approved") => StepOutcome::Success(
                StepSuccess::empty()
                    .with_event(OutboxEvent::new(events::CHARGE_SUCCEEDED, payload)),
            ),
            Some(DECLINED_OUTCOME) => StepOutcome::Finish {
                outcome: DECLINED_OUTCOME.to_owned(),
                success: StepSuccess::empty()
                    .with_event(OutboxEvent::new(events::CHARGE_DECLINED, payload)),
            },
            other => StepOutcome::Pause {
                reason: format!(
                    "the charge result `{}` is not one this step knows; resume the run from `charge`",
                    other.unwrap_or("none")
                ),
            },
        })
    }
}

impl StepHandler for ConcludeCharge {
    fn execute<'a>(&'a self, ctx: &'a StepContext) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move { Self::conclude(ctx).unwrap_or_else(|o| o) })
    }

    /// Its only effect is its record's event: if the record did not commit, nothing happened.
    fn reconcile<'a>(&'a self, _ctx: &'a StepContext) -> BoxFuture<'a, ReconcileOutcome> {
        Box::pin(async { ReconcileOutcome::NotApplied })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_last_four_digits_of_a_card_are_kept() {
        assert_eq!(last4(Some("4242")).as_deref(), Some("4242"));
        assert_eq!(last4(Some("458045804580")).as_deref(), Some("4580"));
        assert_eq!(last4(Some("**42")).as_deref(), Some("42"));
        assert_eq!(last4(Some("")), None);
        assert_eq!(last4(None), None);
    }
}
