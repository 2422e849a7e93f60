//! The SUMIT (OfficeGuy) client: one typed method per endpoint, every failure classified.
//!
//! Transport (reference §1.1–1.2): `POST` of a JSON body to `base_url + path`, credentials in
//! the body, `Content-Language` choosing the language of error texts, and an envelope
//! `{Status, UserErrorMessage, TechnicalErrorDetails, Data}` answered with HTTP 200 whatever the
//! status. Redirects are never followed (a redirect means a wrong base URL, and following it
//! would resend credentials elsewhere).
//!
//! Classification, per call:
//! - `Status: 0` → the typed answer (for a charge, [`ChargeOutcome::Approved`] or
//!   [`ChargeOutcome::Declined`]).
//! - `Status: 1 | 2` → [`ProviderError::Rejected`] with the provider's message; not retried.
//! - connection refused or timed out while connecting → `Retryable` (nothing was sent).
//! - HTTP 429 → `Retryable` with its `Retry-After`; 500/502/503 (and other 5xx) → `Retryable`.
//! - For mutating calls (create company, open terminal, charge, create document): a timeout or
//!   reset after the request was sent, a body cut short, an HTTP 504, or a 200 whose body is
//!   not the envelope → unknown outcome. For read-only calls the same failures are
//!   `Retryable`: a read has no effect to be unsure about, and retrying it is the lookup.
//! - Other statuses (3xx, 4xx) → `Protocol` (fatal): the request did not reach the API.

mod json;
mod types;

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use reqwest::header::{ACCEPT, CONTENT_LANGUAGE, HeaderMap, LOCATION, RETRY_AFTER};
use reqwest::{StatusCode, redirect};
use serde_json::{Value, json};

pub use types::{
    Application, ApprovedCharge, ChargeOutcome, ChargeRequest, CompanyDetails, CompanyType,
    CreateCompany, CreateDocument, CreatedCompany, Credentials, Customer, DocumentDetails,
    DocumentLanguage, DocumentLine, DocumentPayment, DocumentType, FoundCompany, IssuedDocument,
    LineItem, ListPayments, OpenTerminal, Payment, PaymentDetails, PaymentLookup, PaymentsPage,
    SearchMode, UpayProgram,
};

use crate::error::{ProviderError, RejectionKind};

/// The production API host (paths have no `/api` prefix, reference §1.1).
pub const PRODUCTION_BASE_URL: &str = "https://api.sumit.co.il";

/// The language of `UserErrorMessage`, sent as `Content-Language`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ErrorLanguage {
    Hebrew,
    /// English by default: the messages end up in logs and operator screens read by engineers;
    /// the marketplace's own users see our localized texts, not SUMIT's.
    #[default]
    English,
}

impl ErrorLanguage {
    fn header(self) -> &'static str {
        match self {
            ErrorLanguage::Hebrew => "he",
            ErrorLanguage::English => "en",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Time allowed to establish the TCP (and TLS) connection. A call that fails here was not
    /// sent, so it is always retryable.
    pub connect_timeout: Duration,
    /// Time allowed for the whole call, connection included. Live calls took 40–1140 ms with
    /// multi-second tails (reference §1.1, §7.10).
    pub request_timeout: Duration,
    pub language: ErrorLanguage,
    /// Allows the sandbox-only lookup by corporate number. Leave false in production: SUMIT has
    /// no such endpoint, and the lookup then answers [`ProviderError::Unsupported`].
    pub sandbox_extensions: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            language: ErrorLanguage::default(),
            sandbox_extensions: false,
        }
    }
}

/// An endpoint and whether calling it changes anything at the provider.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    path: &'static str,
    mutating: bool,
}

const CREATE_COMPANY: Endpoint = Endpoint {
    path: "/website/companies/create/",
    mutating: true,
};
const GET_COMPANY_DETAILS: Endpoint = Endpoint {
    path: "/website/companies/getdetails/",
    mutating: false,
};
/// Sandbox-only (docs/sandbox.md).
const FIND_COMPANY: Endpoint = Endpoint {
    path: "/_sandbox/website/companies/find/",
    mutating: false,
};
const OPEN_UPAY_TERMINAL: Endpoint = Endpoint {
    path: "/billing/generalbilling/openupayterminal/",
    mutating: true,
};
const CHARGE: Endpoint = Endpoint {
    path: "/billing/payments/charge/",
    mutating: true,
};
const GET_PAYMENT: Endpoint = Endpoint {
    path: "/billing/payments/get/",
    mutating: false,
};
const LIST_PAYMENTS: Endpoint = Endpoint {
    path: "/billing/payments/list/",
    mutating: false,
};
const CREATE_DOCUMENT: Endpoint = Endpoint {
    path: "/accounting/documents/create/",
    mutating: true,
};
const GET_DOCUMENT: Endpoint = Endpoint {
    path: "/accounting/documents/getdetails/",
    mutating: false,
};
const VERIFY_BANK_ACCOUNT: Endpoint = Endpoint {
    path: "/accounting/general/verifybankaccount/",
    mutating: false,
};

/// Answers larger than this are refused rather than buffered.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// A bound on `payments/list` paging, so a server that always says `HasNextPage` cannot keep a
/// lookup going forever.
const MAX_LIST_PAGES: usize = 1000;

/// A SUMIT client. Cheap to clone; clones share the connection pool.
#[derive(Clone)]
pub struct SumitClient {
    http: reqwest::Client,
    base_url: String,
    config: ClientConfig,
}

impl std::fmt::Debug for SumitClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SumitClient")
            .field("base_url", &self.base_url)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SumitClient {
    /// A client for `base_url` (for example [`PRODUCTION_BASE_URL`] or a sandbox's URL).
    pub fn new(base_url: &str, config: ClientConfig) -> Result<SumitClient, ProviderError> {
        let base_url = base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ProviderError::InvalidConfig {
                reason: format!("the base URL {base_url:?} must start with http:// or https://"),
            });
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .redirect(redirect::Policy::none())
            .user_agent(concat!("vendorflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::InvalidConfig {
                // The cause matters here: "no CA certificates were loaded from the system".
                reason: format!("cannot build the HTTP client: {}", error_chain(&e)),
            })?;
        Ok(SumitClient {
            http,
            base_url,
            config,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Creates an organization for a vendor with the marketplace's credentials. The keys in the
    /// answer come back only this once.
    pub async fn create_company(
        &self,
        marketplace: &Credentials,
        request: &CreateCompany,
    ) -> Result<CreatedCompany, ProviderError> {
        let data = self
            .call(CREATE_COMPANY, marketplace, request.to_json())
            .await?;
        CreatedCompany::from_data(&data).map_err(|r| malformed(CREATE_COMPANY, r))
    }

    /// The calling organization's details; a cheap authenticated call that proves keys work.
    pub async fn get_company_details(
        &self,
        credentials: &Credentials,
    ) -> Result<CompanyDetails, ProviderError> {
        let data = self
            .call(GET_COMPANY_DETAILS, credentials, json!({}))
            .await?;
        CompanyDetails::from_data(&data).map_err(|r| malformed(GET_COMPANY_DETAILS, r))
    }

    /// Finds an organization the marketplace created, by corporate number.
    ///
    /// SUMIT has no such lookup that we know of, so this works only against the sandbox (with
    /// [`ClientConfig::sandbox_extensions`]); in production it answers
    /// [`ProviderError::Unsupported`] and the engine must pause for an operator. (In production a
    /// retried `create_company` is itself the probe: a duplicate `CorporateNumber` is refused
    /// with `Status: 1`, which tells that the organization exists but not its keys.)
    pub async fn find_company_by_corporate_number(
        &self,
        marketplace: &Credentials,
        corporate_number: &str,
    ) -> Result<Option<FoundCompany>, ProviderError> {
        if !self.config.sandbox_extensions {
            return Err(ProviderError::Unsupported {
                operation: "find_company_by_corporate_number",
                reason: "SUMIT offers no lookup of organizations by corporate number",
            });
        }
        let data = self
            .call(
                FIND_COMPANY,
                marketplace,
                json!({ "CorporateNumber": corporate_number }),
            )
            .await?;
        let Some(c) = json::field(&data, "Company") else {
            return Ok(None);
        };
        let company_id =
            json::integer(c, "CompanyID").ok_or_else(|| malformed(FIND_COMPANY, "CompanyID"))?;
        Ok(Some(FoundCompany {
            company_id,
            name: json::string(c, "Name"),
            corporate_number: json::string(c, "CorporateNumber"),
        }))
    }

    /// Requests a Upay clearing terminal for the vendor. Approval happens later, by hand at
    /// Upay; no endpoint reports it.
    pub async fn open_upay_terminal(
        &self,
        vendor: &Credentials,
        request: &OpenTerminal,
    ) -> Result<(), ProviderError> {
        self.call(OPEN_UPAY_TERMINAL, vendor, request.to_json())
            .await
            .map(|_| ())
    }

    /// Charges a customer on the vendor's terminal. A decline is `Ok(Declined)`, not an error.
    pub async fn charge(
        &self,
        vendor: &Credentials,
        request: &ChargeRequest,
    ) -> Result<ChargeOutcome, ProviderError> {
        let data = self.call(CHARGE, vendor, request.to_json()).await?;
        ChargeOutcome::from_data(&data).map_err(|r| malformed(CHARGE, r))
    }

    pub async fn get_payment(
        &self,
        credentials: &Credentials,
        payment_id: i64,
    ) -> Result<Payment, ProviderError> {
        let data = self
            .call(GET_PAYMENT, credentials, json!({ "PaymentID": payment_id }))
            .await?;
        let p = json::field(&data, "Payment").ok_or_else(|| malformed(GET_PAYMENT, "Payment"))?;
        let payment = Payment::from_json(p).map_err(|r| malformed(GET_PAYMENT, r))?;
        // Reference §1.6: accept a payment only if the ID matches the one asked for.
        if payment.id != payment_id {
            return Err(malformed(
                GET_PAYMENT,
                format!("asked for payment {payment_id}, got {}", payment.id),
            ));
        }
        Ok(payment)
    }

    pub async fn list_payments(
        &self,
        credentials: &Credentials,
        request: &ListPayments,
    ) -> Result<PaymentsPage, ProviderError> {
        let (page, _) = self.list_payments_raw(credentials, request).await?;
        Ok(page)
    }

    /// A page and how many of its rows say nothing about an identifier.
    async fn list_payments_raw(
        &self,
        credentials: &Credentials,
        request: &ListPayments,
    ) -> Result<(PaymentsPage, usize), ProviderError> {
        let data = self
            .call(LIST_PAYMENTS, credentials, request.to_json())
            .await?;
        let rows = match json::field(&data, "Payments") {
            None => Vec::new(),
            Some(Value::Array(rows)) => rows.clone(),
            Some(_) => return Err(malformed(LIST_PAYMENTS, "Payments is not a list")),
        };
        let silent = rows
            .iter()
            .filter(|r| !Payment::row_carries_identifier(r))
            .count();
        let payments = rows
            .iter()
            .map(Payment::from_json)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|r| malformed(LIST_PAYMENTS, r))?;
        let has_next_page = json::boolean(&data, "HasNextPage").unwrap_or(false);
        Ok((
            PaymentsPage {
                payments,
                has_next_page,
            },
            silent,
        ))
    }

    /// Finds the payment of a charge sent with `external_identifier` (as `UniqueIdentifier`),
    /// among the payments dated `from` through `to`, by paging through `payments/list`.
    ///
    /// Real payment rows are not known to carry the identifier; when some rows in the range do
    /// not, absence cannot be proven and the answer is [`PaymentLookup::Indeterminate`].
    pub async fn find_payment_by_external_identifier(
        &self,
        credentials: &Credentials,
        external_identifier: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<PaymentLookup, ProviderError> {
        let mut request = ListPayments {
            from,
            to,
            valid: None,
            start_index: 0,
        };
        let mut silent_rows = 0usize;
        let mut declined: Option<Payment> = None;
        for _ in 0..MAX_LIST_PAGES {
            let (page, silent) = self.list_payments_raw(credentials, &request).await?;
            silent_rows += silent;
            for p in &page.payments {
                if p.external_identifier.as_deref() == Some(external_identifier) {
                    if p.valid {
                        return Ok(PaymentLookup::Found(p.clone()));
                    }
                    declined.get_or_insert_with(|| p.clone());
                }
            }
            if !page.has_next_page || page.payments.is_empty() {
                return Ok(match declined {
                    Some(p) => PaymentLookup::Found(p),
                    None if silent_rows > 0 => PaymentLookup::Indeterminate {
                        rows_without_identifier: silent_rows,
                    },
                    None => PaymentLookup::NotFound,
                });
            }
            let count = u32::try_from(page.payments.len()).unwrap_or(u32::MAX);
            request.start_index = request.start_index.saturating_add(count);
        }
        Err(malformed(
            LIST_PAYMENTS,
            format!("still more pages after {MAX_LIST_PAGES}"),
        ))
    }

    /// Issues a document (invoice, receipt, ...) in the organization's name.
    pub async fn create_document(
        &self,
        credentials: &Credentials,
        request: &CreateDocument,
    ) -> Result<IssuedDocument, ProviderError> {
        let data = self
            .call(CREATE_DOCUMENT, credentials, request.to_json())
            .await?;
        IssuedDocument::from_data(&data).map_err(|r| malformed(CREATE_DOCUMENT, r))
    }

    pub async fn get_document(
        &self,
        credentials: &Credentials,
        document_id: i64,
    ) -> Result<DocumentDetails, ProviderError> {
        let data = self
            .call(
                GET_DOCUMENT,
                credentials,
                json!({ "DocumentID": document_id }),
            )
            .await?;
        DocumentDetails::from_data(&data, document_id).map_err(|r| malformed(GET_DOCUMENT, r))
    }

    /// SUMIT's own check of a bank account: `Some(true)` valid, `Some(false)` invalid, `None`
    /// when SUMIT does not support the bank.
    pub async fn verify_bank_account(
        &self,
        credentials: &Credentials,
        bank_code: u16,
        branch_code: u16,
        account_number: &str,
    ) -> Result<Option<bool>, ProviderError> {
        // The API types the account as an integer (S2); a numeric account is sent as one, so
        // leading zeros are dropped exactly as the real client models do.
        let account = match account_number.parse::<u64>() {
            Ok(n) => json!(n),
            Err(_) => json!(account_number),
        };
        let data = self
            .call(
                VERIFY_BANK_ACCOUNT,
                credentials,
                json!({ "BankCode": bank_code, "BranchCode": branch_code, "AccountNumber": account }),
            )
            .await?;
        Ok(json::boolean(&data, "Result"))
    }

    /// One call: send, classify, and return `Data` of a `Status: 0` envelope. Logs the endpoint,
    /// duration and class, never a body.
    async fn call(
        &self,
        endpoint: Endpoint,
        credentials: &Credentials,
        mut body: Value,
    ) -> Result<Value, ProviderError> {
        if let Some(map) = body.as_object_mut() {
            map.insert("Credentials".into(), credentials.to_json());
        }
        let started = Instant::now();
        let result = self.send(endpoint, &body).await;
        drop(body);
        let took = started.elapsed();
        crate::observability::request(
            endpoint.path,
            crate::observability::class_label(&result),
            took,
        );
        let duration_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
        match &result {
            Ok(_) => tracing::info!(
                endpoint = endpoint.path,
                company_id = credentials.company_id,
                duration_ms,
                "sumit call succeeded"
            ),
            Err(e) => tracing::warn!(
                endpoint = endpoint.path,
                company_id = credentials.company_id,
                duration_ms,
                class = ?e.class(),
                error = %e,
                "sumit call failed"
            ),
        }
        result
    }

    async fn send(&self, endpoint: Endpoint, body: &Value) -> Result<Value, ProviderError> {
        let url = format!("{}{}", self.base_url, endpoint.path);
        let response = self
            .http
            .post(&url)
            .header(CONTENT_LANGUAGE, self.config.language.header())
            .header(ACCEPT, "application/json")
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(endpoint, &e))?;

        let status = response.status();
        if !status.is_success() {
            return Err(http_status_error(endpoint, status, response.headers()));
        }
        let bytes = read_body(endpoint, response).await?;
        let envelope: Value = serde_json::from_slice(&bytes).map_err(|_| {
            garbled(
                endpoint,
                "the answer is not JSON (an error page or a proxy answered)".to_string(),
            )
        })?;
        match json::envelope_status(&envelope) {
            Some(0) => Ok(json::field(&envelope, "Data")
                .cloned()
                .unwrap_or(Value::Null)),
            Some(s @ (1 | 2)) => Err(ProviderError::Rejected {
                endpoint: endpoint.path,
                kind: if s == 1 {
                    RejectionKind::Business
                } else {
                    RejectionKind::Technical
                },
                message: json::string(&envelope, "UserErrorMessage")
                    .unwrap_or_else(|| "(no message)".to_string()),
                technical: json::string(&envelope, "TechnicalErrorDetails"),
            }),
            Some(other) => Err(garbled(
                endpoint,
                format!("unknown envelope Status {other}"),
            )),
            None => Err(garbled(
                endpoint,
                "the answer is not the SUMIT envelope (no Status)".to_string(),
            )),
        }
    }

    /// A failure before any HTTP answer arrived.
    fn transport_error(&self, endpoint: Endpoint, e: &reqwest::Error) -> ProviderError {
        if e.is_builder() {
            return ProviderError::InvalidConfig {
                reason: error_chain(e),
            };
        }
        if e.is_connect() {
            // Refused, unreachable, DNS, TLS handshake or connect timeout: the request was not
            // sent, whatever the endpoint.
            return ProviderError::Retryable {
                endpoint: endpoint.path,
                reason: format!("could not connect: {}", error_chain(e)),
                retry_after: None,
            };
        }
        let reason = if e.is_timeout() {
            format!(
                "no answer within {} ms after the request was sent",
                self.config.request_timeout.as_millis()
            )
        } else {
            format!(
                "the connection failed after the request was sent: {}",
                error_chain(e)
            )
        };
        if endpoint.mutating {
            ProviderError::UnknownOutcome {
                endpoint: endpoint.path,
                reason,
            }
        } else {
            ProviderError::Retryable {
                endpoint: endpoint.path,
                reason,
                retry_after: None,
            }
        }
    }
}

/// A non-200 HTTP answer.
fn http_status_error(endpoint: Endpoint, status: StatusCode, headers: &HeaderMap) -> ProviderError {
    let retry_after = parse_retry_after(headers);
    if status.is_redirection() {
        let location = headers
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("?");
        return ProviderError::Protocol {
            endpoint: endpoint.path,
            reason: format!("HTTP {status} redirect to {location}; redirects are not followed"),
            may_have_applied: false,
        };
    }
    if status == StatusCode::GATEWAY_TIMEOUT && endpoint.mutating {
        // A gateway gave up waiting for the API, which may still have applied the request.
        return ProviderError::UnknownOutcome {
            endpoint: endpoint.path,
            reason: format!("HTTP {status} from a gateway"),
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        return ProviderError::Retryable {
            endpoint: endpoint.path,
            reason: format!("HTTP {status}"),
            retry_after,
        };
    }
    ProviderError::Protocol {
        endpoint: endpoint.path,
        reason: format!("unexpected HTTP {status}"),
        may_have_applied: false,
    }
}

async fn read_body(
    endpoint: Endpoint,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, ProviderError> {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(garbled(
                        endpoint,
                        format!("the answer is larger than {MAX_BODY_BYTES} bytes"),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(bytes),
            Err(e) => {
                let reason = format!("the answer was cut short: {}", error_chain(&e));
                return Err(if endpoint.mutating {
                    ProviderError::UnknownOutcome {
                        endpoint: endpoint.path,
                        reason,
                    }
                } else {
                    ProviderError::Retryable {
                        endpoint: endpoint.path,
                        reason,
                        retry_after: None,
                    }
                });
            }
        }
    }
}

/// An HTTP 200 that is not a usable envelope. The API answered, so a mutating request may have
/// been applied.
fn garbled(endpoint: Endpoint, reason: String) -> ProviderError {
    if endpoint.mutating {
        ProviderError::Protocol {
            endpoint: endpoint.path,
            reason,
            may_have_applied: true,
        }
    } else {
        ProviderError::Retryable {
            endpoint: endpoint.path,
            reason,
            retry_after: None,
        }
    }
}

/// `Status: 0` but `Data` lacks what the endpoint promises.
fn malformed(endpoint: Endpoint, what: impl std::fmt::Display) -> ProviderError {
    garbled(endpoint, format!("unexpected Data: {what}"))
}

/// `Retry-After` as seconds or as an HTTP date.
fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = at.with_timezone(&Utc) - Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// An error and its sources, for messages (URLs only; bodies never appear in reqwest errors).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn retry_after_is_read_as_seconds_or_an_http_date() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn http_statuses_are_classified_by_whether_the_request_may_have_been_applied() {
        use crate::error::ErrorClass;
        let h = HeaderMap::new();
        let class =
            |ep, s: u16| http_status_error(ep, StatusCode::from_u16(s).unwrap(), &h).class();
        for s in [500, 502, 503, 429, 408] {
            assert_eq!(class(CHARGE, s), ErrorClass::Retryable, "{s}");
        }
        assert_eq!(class(CHARGE, 504), ErrorClass::UnknownOutcome);
        assert_eq!(class(GET_PAYMENT, 504), ErrorClass::Retryable);
        assert_eq!(class(CHARGE, 302), ErrorClass::Fatal);
        assert_eq!(class(CHARGE, 404), ErrorClass::Fatal);
    }

    #[test]
    fn a_base_url_without_a_scheme_is_refused() {
        let e = SumitClient::new("api.sumit.co.il", ClientConfig::default()).unwrap_err();
        assert_eq!(e.class(), crate::error::ErrorClass::Fatal);
    }
}
