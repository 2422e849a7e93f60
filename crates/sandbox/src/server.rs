//! The HTTP side: a listener whose connections can be reset from a handler, the SUMIT endpoint
//! dispatcher that applies faults, and the `/_sandbox/...` control endpoints.
//!
//! Resetting a connection from inside axum: every accepted socket is wrapped in a
//! [`KillableStream`] sharing a flag with the [`Conn`] that handlers receive as connect info.
//! A handler that wants the caller to see a reset sets the flag and returns any response; when
//! hyper next touches the socket, the stream sets `SO_LINGER` to zero, drops the socket (the
//! kernel sends a TCP RST instead of a FIN) and reports `ConnectionReset`, so hyper abandons the
//! connection without writing a byte of the response.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::{IncomingStream, Listener};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::config::SandboxConfig;
use crate::faults::{Fault, FaultPlan};
use crate::i18n::Lang;
use crate::ledger::CallRecord;
use crate::persist::{self, Loaded, StateFileError, Store};
use crate::state::{Endpoint, Handled, World};
use crate::wire::parse_datetime;

/// State shared by all connections: the world behind a mutex that is never held across an
/// await, and where it is saved, if anywhere.
pub(crate) struct Shared {
    world: Mutex<World>,
    store: Option<Store>,
}

impl Shared {
    /// The world of a new sandbox: empty, or loaded from its state file (which is then written
    /// once, so a file that cannot be written fails the start rather than the first request).
    pub(crate) fn open(config: SandboxConfig) -> Result<Shared, StateFileError> {
        let Some(file) = config.state_file.clone() else {
            return Ok(Shared {
                world: Mutex::new(World::new(config)),
                store: None,
            });
        };
        let world = match persist::load(&file)? {
            Loaded::Fresh => World::new(config),
            Loaded::SetAside(aside) => {
                tracing::warn!(
                    state_file = %file.path.display(),
                    set_aside = %aside.display(),
                    "the sandbox state file belongs to another owner (another database); \
                     it was set aside and the sandbox starts empty"
                );
                World::new(config)
            }
            Loaded::Restored { books, starts } => World::restore(config, *books, starts),
        };
        let shared = Shared {
            world: Mutex::new(world),
            store: Some(Store::new(file)),
        };
        shared.save(true)?;
        Ok(shared)
    }

    /// Locks the world. A panic while the lock was held cannot leave it half-updated in a way
    /// that matters to a simulator, so a poisoned lock is simply taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the state file, if there is one, when the books changed (always with `force`).
    /// Blocking: async code calls [`save_changes`].
    pub(crate) fn save(&self, force: bool) -> Result<(), StateFileError> {
        match &self.store {
            Some(store) => store.save(force, &self.world),
            None => Ok(()),
        }
    }

    /// [`Shared::save`] for callers that cannot report an error (a drop, a control call): the
    /// error is logged.
    pub(crate) fn save_or_log(&self, force: bool) {
        if let Err(e) = self.save(force) {
            tracing::error!(error = %e, "the sandbox could not save its state");
        }
    }

    fn unsaved(&self) -> bool {
        self.store
            .as_ref()
            .is_some_and(|store| store.unsaved(&self.lock()))
    }

    /// The state file, if the state is kept in one.
    pub(crate) fn state_path(&self) -> Option<&std::path::Path> {
        self.store.as_ref().map(Store::path)
    }
}

/// Saves the books' changes before an answer goes out, on a blocking thread; a failure is
/// logged (the answer reflects what the sandbox did either way).
pub(crate) async fn save_changes(shared: &Arc<Shared>) {
    if !shared.unsaved() {
        return;
    }
    let saving = Arc::clone(shared);
    match tokio::task::spawn_blocking(move || saving.save(false)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "the sandbox could not save its state"),
        Err(e) => tracing::error!(error = %e, "the sandbox's save task failed"),
    }
}

// ---- connections ------------------------------------------------------------------------------

/// Wraps the TCP listener so that each connection carries a reset switch.
pub(crate) struct SandboxListener {
    inner: TcpListener,
}

impl SandboxListener {
    pub(crate) fn new(inner: TcpListener) -> Self {
        SandboxListener { inner }
    }
}

impl Listener for SandboxListener {
    type Io = KillableStream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let kill = Arc::new(AtomicBool::new(false));
                    return (
                        KillableStream {
                            inner: Some(stream),
                            kill: Arc::clone(&kill),
                        },
                        Conn { peer, kill },
                    );
                }
                Err(e) => {
                    // Accept errors (file descriptors exhausted, a connection aborted before it
                    // was accepted) are transient; back off briefly instead of spinning.
                    tracing::warn!(error = %e, "sandbox accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Conn {
            peer: self.inner.local_addr()?,
            kill: Arc::new(AtomicBool::new(false)),
        })
    }
}

/// A connection as seen by a handler: its peer, and the switch that resets it.
#[derive(Debug, Clone)]
pub(crate) struct Conn {
    // Read only through Debug: axum traces each accepted connection by its address.
    #[allow(dead_code)]
    peer: SocketAddr,
    kill: Arc<AtomicBool>,
}

impl Conn {
    /// Makes the connection end in a TCP reset the next time hyper reads or writes it.
    fn reset(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

impl Connected<IncomingStream<'_, SandboxListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, SandboxListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP stream that turns into a reset once its switch is set.
pub(crate) struct KillableStream {
    inner: Option<TcpStream>,
    kill: Arc<AtomicBool>,
}

impl KillableStream {
    fn live(&mut self) -> io::Result<&mut TcpStream> {
        if self.kill.load(Ordering::SeqCst)
            && let Some(stream) = self.inner.take()
        {
            // Zero linger makes close() send RST and discard anything unsent.
            let _ = stream.set_zero_linger();
            drop(stream);
        }
        self.inner.as_mut().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::ConnectionReset,
                "the sandbox reset this connection",
            )
        })
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.live() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.live() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.live() {
            Ok(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.live() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.live() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

// ---- routes -----------------------------------------------------------------------------------

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/_sandbox/health", get(health))
        .route("/_sandbox/ledger", get(ledger))
        .route(
            "/_sandbox/faults",
            get(get_faults)
                .put(put_faults)
                .post(add_faults)
                .delete(clear_faults),
        )
        .route("/_sandbox/terminals/{company_id}/approve", post(approve))
        .route("/_sandbox/terminals/{company_id}/reject", post(reject))
        .route("/_sandbox/clock", get(get_clock).put(put_clock))
        .route("/_sandbox/reset", post(reset))
        .route("/_sandbox/companies/{company_id}/keys", get(keys))
        .route("/_sandbox/documents/{document_id}/download", get(download))
        // Every other path, including the SUMIT endpoints and the sandbox-only lookup under
        // /_sandbox/website/, goes through the SUMIT dispatcher.
        .fallback(sumit)
        .with_state(shared)
}

pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router(shared).into_make_service_with_connect_info::<Conn>();
    axum::serve(SandboxListener::new(listener), app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// One SUMIT call: decide its faults, then process, fail, hang or reset as decided.
async fn sumit(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(endpoint) = Endpoint::from_path(uri.path()) else {
        return html(StatusCode::NOT_FOUND, "404 - File or directory not found.");
    };
    if method != Method::POST {
        let mut r = html(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 - HTTP verb used to access this page is not allowed.",
        );
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let started = Instant::now();
    let lang = Lang::from_headers(&headers);
    let base_url = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| format!("http://{h}"))
        .unwrap_or_default();
    let decision = shared.lock().faults.decide(endpoint.path());
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    let labels = decision.labels;

    let parsed: Option<Value> = if body.iter().all(u8::is_ascii_whitespace) {
        Some(json!({}))
    } else {
        serde_json::from_slice(&body).ok()
    };
    let Some(request) = parsed else {
        record(&shared, endpoint, None, labels, true, started);
        return problem_400();
    };

    let process = |answered: bool| -> Handled {
        let handled = shared.lock().handle(endpoint, &request, lang, &base_url);
        record(
            &shared,
            endpoint,
            Some(&handled),
            labels.clone(),
            answered,
            started,
        );
        handled
    };

    match decision.action {
        None | Some(Fault::Latency { .. }) | Some(Fault::LongTail { .. }) => {
            let handled = process(true);
            save_changes(&shared).await;
            envelope(&handled)
        }
        Some(Fault::HttpError { status }) => {
            record(&shared, endpoint, None, labels, false, started);
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            html(code, code.canonical_reason().unwrap_or("Server Error"))
        }
        Some(Fault::RateLimited { retry_after_secs }) => {
            record(&shared, endpoint, None, labels, false, started);
            let mut r = html(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            r
        }
        Some(Fault::Reset) => {
            record(&shared, endpoint, None, labels, false, started);
            conn.reset();
            StatusCode::OK.into_response()
        }
        Some(Fault::CommitThenDrop) => {
            process(false);
            save_changes(&shared).await;
            conn.reset();
            StatusCode::OK.into_response()
        }
        Some(Fault::Hang { ms, commit }) => {
            // With `commit` the effect is applied before the wait, so it happens whether or not
            // the caller is still there; without, nothing is applied and the connection ends.
            let handled = commit.then(|| process(true));
            if handled.is_none() {
                record(&shared, endpoint, None, labels.clone(), false, started);
            }
            save_changes(&shared).await;
            tokio::time::sleep(Duration::from_millis(ms)).await;
            match handled {
                Some(h) => envelope(&h),
                None => {
                    conn.reset();
                    StatusCode::OK.into_response()
                }
            }
        }
        Some(Fault::GarbledBody) => {
            process(false);
            save_changes(&shared).await;
            html(
                StatusCode::OK,
                "<html><body><h1>Service temporarily unavailable</h1></body></html>",
            )
        }
    }
}

fn record(
    shared: &Shared,
    endpoint: Endpoint,
    handled: Option<&Handled>,
    faults: Vec<String>,
    answered: bool,
    started: Instant,
) {
    let record = CallRecord {
        seq: 0,
        endpoint: endpoint.path().to_string(),
        company_id: handled.and_then(|h| h.company_id),
        envelope_status: handled.map(|h| h.reply.status),
        committed: handled.is_some_and(|h| h.committed),
        faults,
        answered,
    };
    // Bodies are never logged: they carry API keys and bank details.
    tracing::info!(
        endpoint = endpoint.path(),
        envelope_status = ?record.envelope_status,
        committed = record.committed,
        faults = ?record.faults,
        duration_ms = started.elapsed().as_millis() as u64,
        "sandbox call"
    );
    shared.lock().record_call(record);
}

fn envelope(handled: &Handled) -> Response {
    let body = handled.reply.to_json().to_string();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

fn html(status: StatusCode, title: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html><head><title>{status} {title}</title></head>\
         <body><h1>{status}</h1><p>{title}</p></body></html>"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The ASP.NET answer to a body that is not JSON.
fn problem_400() -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(
            header::CONTENT_TYPE,
            "application/problem+json; charset=utf-8",
        )],
        json!({
            "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
            "title": "One or more validation errors occurred.",
            "status": 400,
        })
        .to_string(),
    )
        .into_response()
}

// ---- control endpoints ------------------------------------------------------------------------

fn control_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

/// Reads a control request's JSON body; the error is the message for a 400.
fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("invalid JSON body: {e}"))
}

async fn health() -> Response {
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn ledger(State(shared): State<Arc<Shared>>) -> Response {
    let ledger = shared.lock().ledger();
    axum::Json(ledger).into_response()
}

async fn get_faults(State(shared): State<Arc<Shared>>) -> Response {
    let plan = shared.lock().faults.plan().clone();
    axum::Json(plan).into_response()
}

async fn put_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let plan: FaultPlan = match parse_body(&body) {
        Ok(p) => p,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    if let Err(e) = plan.validate() {
        return control_error(StatusCode::BAD_REQUEST, e);
    }
    let mut world = shared.lock();
    world.faults.set_plan(normalize(plan));
    axum::Json(world.faults.plan().clone()).into_response()
}

async fn add_faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let plan: FaultPlan = match parse_body(&body) {
        Ok(p) => p,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    if let Err(e) = plan.validate() {
        return control_error(StatusCode::BAD_REQUEST, e);
    }
    let mut world = shared.lock();
    world.faults.merge_plan(plan);
    axum::Json(world.faults.plan().clone()).into_response()
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().faults.set_plan(FaultPlan::none());
    axum::Json(FaultPlan::none()).into_response()
}

/// Keys of a plan read from JSON get the trailing slash the matcher expects.
pub(crate) fn normalize(plan: FaultPlan) -> FaultPlan {
    let mut out = FaultPlan::none();
    out.merge(plan);
    out
}

async fn approve(State(shared): State<Arc<Shared>>, Path(company_id): Path<i64>) -> Response {
    let decided = shared.lock().decide_terminal(company_id, true, None);
    match decided {
        Ok(()) => {
            save_changes(&shared).await;
            axum::Json(json!({ "company_id": company_id, "state": "approved" })).into_response()
        }
        Err(e) => control_error(StatusCode::NOT_FOUND, e),
    }
}

#[derive(serde::Deserialize, Default)]
struct RejectBody {
    reason: Option<String>,
}

async fn reject(
    State(shared): State<Arc<Shared>>,
    Path(company_id): Path<i64>,
    body: Bytes,
) -> Response {
    let reason = if body.is_empty() {
        RejectBody::default()
    } else {
        match parse_body::<RejectBody>(&body) {
            Ok(b) => b,
            Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
        }
    };
    let decided = shared
        .lock()
        .decide_terminal(company_id, false, reason.reason);
    match decided {
        Ok(()) => {
            save_changes(&shared).await;
            axum::Json(json!({ "company_id": company_id, "state": "rejected" })).into_response()
        }
        Err(e) => control_error(StatusCode::NOT_FOUND, e),
    }
}

async fn get_clock(State(shared): State<Arc<Shared>>) -> Response {
    let world = shared.lock();
    axum::Json(json!({
        "now": world.now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        "frozen": world.clock().is_some(),
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
struct ClockBody {
    now: Option<String>,
}

async fn put_clock(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let body: ClockBody = match parse_body(&body) {
        Ok(b) => b,
        Err(e) => return control_error(StatusCode::BAD_REQUEST, e),
    };
    let clock = match body.now.as_deref().map(parse_datetime) {
        None => None,
        Some(Some(t)) => Some(t),
        Some(None) => {
            return control_error(
                StatusCode::BAD_REQUEST,
                "`now` must be an Israel local date-time such as 2024-12-31T23:30:00, or null",
            );
        }
    };
    let mut world = shared.lock();
    world.set_clock(clock);
    axum::Json(json!({
        "now": world.now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        "frozen": world.clock().is_some(),
    }))
    .into_response()
}

async fn reset(State(shared): State<Arc<Shared>>) -> Response {
    shared.lock().reset();
    save_changes(&shared).await;
    axum::Json(json!({ "status": "reset" })).into_response()
}

async fn keys(State(shared): State<Arc<Shared>>, Path(company_id): Path<i64>) -> Response {
    match shared.lock().company_keys(company_id) {
        Ok(k) => axum::Json(k).into_response(),
        Err(e) => control_error(StatusCode::NOT_FOUND, e),
    }
}

async fn download(State(shared): State<Arc<Shared>>, Path(document_id): Path<i64>) -> Response {
    let ledger = shared.lock().ledger();
    match ledger.document(document_id) {
        Some(d) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!(
                "Sandbox document {} ({} #{}), dated {}, total {} agorot including {} agorot VAT.\n",
                d.document_id,
                d.document_type_name,
                d.document_number.map_or("draft".to_string(), |n| n.to_string()),
                d.date,
                d.total_agorot,
                d.vat_agorot
            ),
        )
            .into_response(),
        None => control_error(StatusCode::NOT_FOUND, format!("no document {document_id}")),
    }
}
