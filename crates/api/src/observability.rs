//! `GET /metrics`: this process's metrics in the Prometheus text format, with the gauges that
//! must hold across every process (queue depth, age of the oldest due run, dead letters)
//! computed from PostgreSQL at scrape time.
//!
//! The api crate does not know the exporter: the binary installs the recorder and hands over its
//! render function ([`MetricsRender`]). Without one, `/metrics` answers 404. The route takes no
//! token: it is meant for a scraper on an internal network, and the binary serves it on the API's
//! port only when a setting asks for it (or on a separate internal address). Its labels carry no
//! vendor, marketplace or person: workflow names, step names, endpoints and result words only.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

/// Renders the installed recorder's metrics in the Prometheus text format.
pub type MetricsRender = Arc<dyn Fn() -> String + Send + Sync>;

/// Runs due and waiting for a worker, by `workflow` (0 when none).
pub const QUEUE_DEPTH: &str = "vendorflow_queue_depth";
/// Seconds since the oldest due run became due, by `workflow` (0 when none is due).
pub const OLDEST_DUE_RUN_AGE: &str = "vendorflow_oldest_due_run_age_seconds";
/// Webhook deliveries that are dead letters.
pub const WEBHOOK_DEAD_LETTERS: &str = "vendorflow_webhook_dead_letters";
/// 1 when the last scrape read the gauges above from the database, 0 when it could not (they
/// then keep their previous values).
pub const DATABASE_UP: &str = "vendorflow_metrics_database_up";

/// The longest a scrape waits for the database before answering without fresh gauges.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The Prometheus text format's content type.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Workflows given queue gauges by earlier scrapes: one that no longer has due runs (or is no
/// longer loaded) is set back to 0 rather than keeping its last value.
static REPORTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Registers the descriptions of the scrape-time gauges with the installed recorder.
pub fn describe() {
    metrics::describe_gauge!(
        QUEUE_DEPTH,
        "Runs due and waiting for a worker, by workflow (computed from the database at scrape time)."
    );
    metrics::describe_gauge!(
        OLDEST_DUE_RUN_AGE,
        metrics::Unit::Seconds,
        "Seconds since the oldest due run became due, by workflow (from the database at scrape time)."
    );
    metrics::describe_gauge!(
        WEBHOOK_DEAD_LETTERS,
        "Webhook deliveries that are dead letters (from the database at scrape time)."
    );
    metrics::describe_gauge!(
        DATABASE_UP,
        "Whether the last scrape could read the database-backed gauges."
    );
}

/// A router serving only `GET /metrics`, for a separate internal listener.
pub fn metrics_router(state: AppState) -> Router {
    routes().with_state(state)
}

/// The `/metrics` route, for merging into a router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(State(state): State<AppState>) -> Response {
    let Some(render) = state.metrics.clone() else {
        return crate::routes::not_found().await;
    };
    refresh_database_gauges(&state).await;
    ([(CONTENT_TYPE, TEXT_FORMAT)], render()).into_response()
}

/// Sets the database-backed gauges; on failure logs it and says so in [`DATABASE_UP`].
async fn refresh_database_gauges(state: &AppState) {
    let read = tokio::time::timeout(DATABASE_TIMEOUT, async {
        let mut conn = state.pool.acquire().await?;
        let queues = store::observability::due_runs_by_workflow(&mut conn).await?;
        let dead = store::observability::dead_letters(&mut conn).await?;
        Ok::<_, sqlx::Error>((queues, dead))
    })
    .await;
    let (queues, dead) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(error)) => {
            tracing::warn!(error = %error, "metrics: the database gauges could not be read");
            metrics::gauge!(DATABASE_UP).set(0.0);
            return;
        }
        Err(_) => {
            tracing::warn!(
                timeout_ms = DATABASE_TIMEOUT.as_millis() as u64,
                "metrics: the database gauges timed out"
            );
            metrics::gauge!(DATABASE_UP).set(0.0);
            return;
        }
    };
    let mut reported = REPORTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    // Every loaded workflow has a series, so a drained queue reads 0 rather than being absent.
    reported.extend(
        state
            .definitions
            .iter()
            .map(|workflow| workflow.definition.name.clone()),
    );
    reported.extend(queues.iter().map(|stat| stat.workflow.clone()));
    for workflow in reported.iter() {
        let stat = queues.iter().find(|stat| &stat.workflow == workflow);
        let (due, age) = stat.map_or((0.0, 0.0), |stat| {
            (stat.due as f64, stat.oldest_due_age_seconds.max(0.0))
        });
        metrics::gauge!(QUEUE_DEPTH, "workflow" => workflow.clone()).set(due);
        metrics::gauge!(OLDEST_DUE_RUN_AGE, "workflow" => workflow.clone()).set(age);
    }
    metrics::gauge!(WEBHOOK_DEAD_LETTERS).set(dead as f64);
    metrics::gauge!(DATABASE_UP).set(1.0);
}
