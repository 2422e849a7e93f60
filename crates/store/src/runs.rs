//! Runs: the run table is the engine's queue. One documented function per statement.
//!
//! Time always comes from PostgreSQL (`now()`, `clock_timestamp()`); delays are passed in
//! milliseconds relative to it, so the database clock is the only clock and tests can move
//! `next_run_at` or `lease_expires_at` with SQL.
//!
//! Ownership of a running run is fenced by `lease_token`: every change of owner (claim, rescue,
//! cancel, an operator moving the run) increments it, and every write a worker makes is
//! conditioned on `id = $run AND lease_token = $token AND status = 'running'`.

use chrono::{DateTime, Utc};
use domain::run::RunStatus;
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

/// The channel on which enqueues and wake-ups are announced; workers LISTEN on it.
pub const NOTIFY_CHANNEL: &str = "vendorflow_runs";

/// The columns of [`RunRow`] (with the table aliased `r`), for `SELECT` and `RETURNING`.
macro_rules! run_columns {
    () => {
        "r.id, r.workflow, r.workflow_version, r.content_hash, r.marketplace_id, r.subject_id, \
         r.status, r.outcome, r.status_reason, r.step_index, r.step_name, r.generation, r.attempt, \
         r.retry_base, r.open_attempt_id, r.needs_reconcile, r.pause_requested, r.cancel_requested, \
         r.last_record_id, r.record_failures, r.last_error, \
         r.next_run_at, r.lease_owner, r.lease_expires_at, r.lease_token, r.waiting_since, \
         r.next_poll_at, r.next_reminder_at, r.input, r.context, r.created_at, r.updated_at, \
         r.finished_at"
    };
}
pub(crate) use run_columns;

/// A run as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: Uuid,
    pub workflow: String,
    pub workflow_version: i32,
    pub content_hash: String,
    pub marketplace_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub outcome: Option<String>,
    pub status_reason: Option<String>,
    pub step_index: i32,
    pub step_name: String,
    pub generation: i32,
    pub attempt: i32,
    pub retry_base: i32,
    pub open_attempt_id: Option<Uuid>,
    pub needs_reconcile: bool,
    pub pause_requested: bool,
    pub cancel_requested: bool,
    pub last_record_id: Option<Uuid>,
    pub record_failures: i32,
    pub last_error: Option<Value>,
    pub next_run_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub lease_token: i64,
    pub waiting_since: Option<DateTime<Utc>>,
    pub next_poll_at: Option<DateTime<Utc>>,
    pub next_reminder_at: Option<DateTime<Utc>>,
    pub input: Value,
    pub context: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl RunRow {
    /// What an operator's operation must know of the run besides its status.
    pub fn flags(&self) -> domain::run::RunFlags {
        domain::run::RunFlags {
            pause_requested: self.pause_requested,
            cancel_requested: self.cancel_requested,
            unreconciled: self.needs_reconcile || self.open_attempt_id.is_some(),
        }
    }
}

/// A definition's source, stored so that runs can be executed with the version they pinned.
#[derive(Debug, Clone)]
pub struct DefinitionSource<'a> {
    pub workflow: &'a str,
    pub version: i32,
    pub content_hash: &'a str,
    pub file_name: &'a str,
    pub source: &'a str,
}

/// A run to insert.
#[derive(Debug, Clone)]
pub struct NewRunRow {
    pub id: Uuid,
    pub marketplace_id: Option<Uuid>,
    pub subject_id: Option<Uuid>,
    pub input: Value,
    /// Milliseconds from now until the run is due (0: now).
    pub delay_ms: i64,
    /// The order this run is for (a charge's order id, a document's reference), unique per
    /// marketplace, subject and workflow: see [`crate::order_keys`].
    pub order_key: Option<String>,
}

/// Inserts runs of one definition as `pending` at its first step, stores the definition's
/// source if this hash is new, appends a `created` event per run, and NOTIFYs the workers
/// (PostgreSQL delivers the notification when the caller's transaction commits).
///
/// One statement: it can run inside the caller's own transaction (transactional enqueue). A run
/// whose order key is taken fails the statement with a unique violation on
/// [`crate::order_keys::INDEX`].
pub async fn insert_runs(
    conn: &mut PgConnection,
    definition: &DefinitionSource<'_>,
    first_step: &str,
    runs: &[NewRunRow],
    actor_kind: &str,
    actor_id: &str,
) -> Result<u64, sqlx::Error> {
    let ids: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    let marketplaces: Vec<Option<Uuid>> = runs.iter().map(|r| r.marketplace_id).collect();
    let subjects: Vec<Option<Uuid>> = runs.iter().map(|r| r.subject_id).collect();
    let delays: Vec<i64> = runs.iter().map(|r| r.delay_ms).collect();
    let inputs: Vec<Value> = runs.iter().map(|r| r.input.clone()).collect();
    let order_keys: Vec<Option<&str>> = runs.iter().map(|r| r.order_key.as_deref()).collect();
    let inserted: i64 = sqlx::query_scalar(
        "WITH d AS (
            INSERT INTO vendorflow.workflow_definitions (workflow, content_hash, version, file_name, source)
            VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (workflow, content_hash) DO NOTHING
        ),
        ins AS (
            INSERT INTO vendorflow.runs
                (id, workflow, workflow_version, content_hash, marketplace_id, subject_id, status,
                 step_index, step_name, next_run_at, input, order_key)
            SELECT u.id, $1, $3, $2, u.marketplace_id, u.subject_id, 'pending', 0, $6,
                   now() + u.delay_ms * interval '1 millisecond', u.input, u.order_key
            FROM unnest($7::uuid[], $8::uuid[], $9::uuid[], $10::int8[], $11::jsonb[], $15::text[])
                AS u(id, marketplace_id, subject_id, delay_ms, input, order_key)
            RETURNING id
        ),
        h AS (
            INSERT INTO vendorflow.run_history (run_id, kind, step_name, actor_kind, actor_id)
            SELECT id, 'created', $6, $12, $13 FROM ins
        )
        SELECT n FROM (SELECT count(*) AS n FROM ins) c, LATERAL (SELECT pg_notify($14, '')) p",
    )
    .bind(definition.workflow)
    .bind(definition.content_hash)
    .bind(definition.version)
    .bind(definition.file_name)
    .bind(definition.source)
    .bind(first_step)
    .bind(&ids)
    .bind(&marketplaces)
    .bind(&subjects)
    .bind(&delays)
    .bind(&inputs)
    .bind(actor_kind)
    .bind(actor_id)
    .bind(NOTIFY_CHANNEL)
    .bind(&order_keys)
    .fetch_one(&mut *conn)
    .await?;
    Ok(u64::try_from(inserted).unwrap_or(0))
}

/// The stored source of the definition a run pinned.
pub async fn definition_source(
    conn: &mut PgConnection,
    workflow: &str,
    content_hash: &str,
) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT file_name, source FROM vendorflow.workflow_definitions
         WHERE workflow = $1 AND content_hash = $2",
    )
    .bind(workflow)
    .bind(content_hash)
    .fetch_optional(&mut *conn)
    .await
}

/// Claims up to `limit` due `pending` runs for `worker_id`: one statement that selects them with
/// `FOR NO KEY UPDATE SKIP LOCKED` (so concurrent workers never wait on each other or claim the
/// same run), marks them `running` under a lease of `lease_ms`, and increments each run's
/// `lease_token`, which fences every later write of this worker. Autocommitted: no transaction
/// is held while the claimed steps execute.
pub async fn claim_due(
    conn: &mut PgConnection,
    worker_id: &str,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "WITH due AS (
            SELECT id FROM vendorflow.runs
            WHERE status = 'pending' AND next_run_at <= now()
            ORDER BY next_run_at
            LIMIT $3
            FOR NO KEY UPDATE SKIP LOCKED
        )
        UPDATE vendorflow.runs AS r
        SET status = 'running', lease_owner = $1,
            lease_expires_at = now() + $2 * interval '1 millisecond',
            lease_token = r.lease_token + 1, next_run_at = NULL, updated_at = now()
        FROM due WHERE r.id = due.id
        RETURNING ",
        run_columns!()
    ))
    .bind(worker_id)
    .bind(lease_ms)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// Gives claimed runs back to the queue (`pending`, due now) without executing them, when a
/// worker shuts down with runs it claimed but never started. Fenced by each run's lease token.
pub async fn release_claims(
    conn: &mut PgConnection,
    ids: &[Uuid],
    tokens: &[i64],
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE vendorflow.runs AS r
         SET status = 'pending', next_run_at = now(), lease_owner = NULL, lease_expires_at = NULL,
             updated_at = now()
         FROM unnest($1::uuid[], $2::int8[]) AS c(id, lease_token)
         WHERE r.id = c.id AND r.lease_token = c.lease_token AND r.status = 'running'",
    )
    .bind(ids)
    .bind(tokens)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// How a record changes the worker's lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseChange {
    /// Keep the lease as it is (the worker continues with the run).
    Keep,
    /// Extend the lease to `now() + ms`.
    Renew(i64),
    /// Give the run up (it is scheduled, waiting, paused or ended).
    Release,
}

/// How a record changes `waiting_since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingSince {
    Keep,
    SetNow,
    Clear,
}

/// The new state of one run, written by [`record`] if the lease still holds.
#[derive(Debug, Clone)]
pub struct RunTransition {
    pub run_id: Uuid,
    pub lease_token: i64,
    pub status: RunStatus,
    pub outcome: Option<String>,
    pub status_reason: Option<String>,
    pub step_index: i32,
    pub step_name: String,
    pub generation: i32,
    pub attempt: i32,
    pub retry_base: i32,
    /// Set when this record starts an attempt (its id), `None` otherwise.
    pub open_attempt_id: Option<Uuid>,
    pub needs_reconcile: bool,
    /// `next_run_at = now() + ms` (for a scheduled run) …
    pub next_run_in_ms: Option<i64>,
    /// … or this absolute time (a wait's next timer); `None` for both clears it.
    pub next_run_at: Option<DateTime<Utc>>,
    pub lease: LeaseChange,
    /// Merged into the context with `||` (top-level keys replaced).
    pub context_patch: Option<Value>,
    pub last_error: Option<Value>,
    pub waiting_since: WaitingSince,
    pub next_poll_at: Option<DateTime<Utc>>,
    pub next_reminder_at: Option<DateTime<Utc>>,
    /// The outbox event to write if an operator's pause request takes effect with this record,
    /// and the id to give it.
    pub paused_event: Option<(Uuid, String)>,
    /// The same for an operator's cancel request.
    pub cancelled_event: Option<(Uuid, String)>,
    /// This record's identity, stored as the run's `last_record_id` when it is written.
    pub record_id: Uuid,
    /// The record this one follows (the run's `last_record_id` as the worker last saw it): the
    /// record is written only if the run is still there, so a replay of a record that already
    /// committed, or a record built on a stale view of the run, writes nothing.
    pub prev_record_id: Option<Uuid>,
}

/// An attempt finished by a record.
#[derive(Debug, Clone)]
pub struct AttemptFinish {
    pub run_id: Uuid,
    pub attempt_id: Uuid,
    pub outcome: String,
    pub error: Option<Value>,
}

/// An attempt started by a record (before its handler is called).
#[derive(Debug, Clone)]
pub struct AttemptStart {
    pub id: Uuid,
    pub run_id: Uuid,
    pub step_index: i32,
    pub step_name: String,
    pub generation: i32,
    pub attempt: i32,
    pub worker_id: String,
    pub lease_token: i64,
}

/// A history event written by a record.
#[derive(Debug, Clone)]
pub struct HistoryEntry {
    pub run_id: Uuid,
    pub kind: String,
    pub step_name: Option<String>,
    pub attempt: Option<i32>,
    pub actor_kind: String,
    pub actor_id: String,
    pub reason: Option<String>,
    /// Redacted by the caller.
    pub data: Option<Value>,
    /// Part of starting the next attempt: dropped if an operator's pause request takes effect
    /// with this record (the attempt is then not started).
    pub only_if_continuing: bool,
}

/// An outbox row written by a record.
#[derive(Debug, Clone)]
pub struct OutboxEntry {
    pub id: Uuid,
    pub run_id: Uuid,
    pub event_type: String,
    pub payload: Value,
}

/// A signal consumed by a record.
#[derive(Debug, Clone)]
pub struct SignalConsumption {
    pub signal_id: Uuid,
    pub run_id: Uuid,
    pub step_name: String,
}

/// Everything one record writes, for one or many runs.
#[derive(Debug, Clone, Default)]
pub struct RecordBatch {
    pub transitions: Vec<RunTransition>,
    pub finishes: Vec<AttemptFinish>,
    pub starts: Vec<AttemptStart>,
    pub history: Vec<HistoryEntry>,
    pub outbox: Vec<OutboxEntry>,
    pub signals: Vec<SignalConsumption>,
}

impl RecordBatch {
    /// Moves every row of `other` into this batch.
    pub fn append(&mut self, other: RecordBatch) {
        self.transitions.extend(other.transitions);
        self.finishes.extend(other.finishes);
        self.starts.extend(other.starts);
        self.history.extend(other.history);
        self.outbox.extend(other.outbox);
        self.signals.extend(other.signals);
    }
}

/// What [`record`] wrote for one run whose lease held.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Recorded {
    pub id: Uuid,
    /// The run's status after the record.
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    /// An operator's pause or cancel request took effect: the run is paused or cancelled and no
    /// attempt was started.
    pub stopped_on_request: bool,
}

/// A cancel an operator requested takes effect with this record: the record leaves the run
/// going on (or scheduled) and nothing to reconcile. (`r` is the locked run, `t` the transition.)
macro_rules! cancel_now {
    () => {
        "(r.cancel_requested AND t.status IN ('pending', 'running', 'waiting') AND NOT t.needs_reconcile)"
    };
}
/// A pause an operator requested takes effect with this record.
macro_rules! pause_now {
    () => {
        "(r.pause_requested AND t.status IN ('pending', 'running', 'waiting'))"
    };
}
/// A requested cancel or pause takes effect with this record.
macro_rules! stop_now {
    () => {
        "((r.cancel_requested AND t.status IN ('pending', 'running', 'waiting') AND NOT t.needs_reconcile) \
          OR (r.pause_requested AND t.status IN ('pending', 'running', 'waiting')))"
    };
}

/// Records step outcomes for one or many runs in ONE statement, hence one transaction: for each
/// run whose lease still holds, it applies the run's transition (status, step, attempt counters,
/// `next_run_at` for a persisted backoff, context merge, lease), finishes and starts attempts,
/// appends history, writes outbox rows and consumes signals. Runs whose lease was taken over are
/// left out entirely.
///
/// Fenced by lease token: a run is written only `WHERE id = $run AND lease_token = $token AND
/// status = 'running'`, and every other row of the record (attempts, history, outbox, signals)
/// is joined to the runs actually updated, so a worker whose lease was taken over (a zombie)
/// writes nothing at all.
///
/// A pause an operator requested while the worker held the run takes effect here: the run
/// becomes `paused`, its lease is released, and the attempt this record would have started is not
/// started (rows marked `only_if_continuing` are dropped). A requested cancel does the same and
/// ends the run `cancelled`, but only with a record that leaves nothing to reconcile: the record's
/// own outcome, writes and outbox rows are written first, so what the provider did is kept.
///
/// Idempotent by identity: a run is written only if its `last_record_id` is still the record
/// this one follows, and then takes this record's id; a record replayed after its commit
/// acknowledgement was lost writes nothing ([`record_applied`] tells that it had committed).
///
/// Returns the runs written; a run of the batch that is missing lost its lease, or was already
/// written by this very record.
pub async fn record(
    conn: &mut PgConnection,
    batch: &RecordBatch,
) -> Result<Vec<Recorded>, sqlx::Error> {
    let t = &batch.transitions;
    let lease_mode: Vec<i16> = t
        .iter()
        .map(|x| match x.lease {
            LeaseChange::Keep => 0,
            LeaseChange::Renew(_) => 1,
            LeaseChange::Release => 2,
        })
        .collect();
    let lease_ms: Vec<i64> = t
        .iter()
        .map(|x| match x.lease {
            LeaseChange::Renew(ms) => ms,
            _ => 0,
        })
        .collect();
    let waiting_mode: Vec<i16> = t
        .iter()
        .map(|x| match x.waiting_since {
            WaitingSince::Keep => 0,
            WaitingSince::SetNow => 1,
            WaitingSince::Clear => 2,
        })
        .collect();
    let f = &batch.finishes;
    let s = &batch.starts;
    let h = &batch.history;
    let o = &batch.outbox;
    let g = &batch.signals;
    sqlx::query_as(concat!(
        "WITH t AS (
            SELECT * FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::int4[],
                $7::text[], $8::int4[], $9::int4[], $10::int4[], $11::uuid[], $12::bool[], $13::int8[],
                $14::timestamptz[], $15::int2[], $16::int8[], $17::jsonb[], $18::jsonb[], $19::int2[],
                $20::timestamptz[], $21::timestamptz[], $22::uuid[], $23::text[], $52::uuid[],
                $53::uuid[], $54::uuid[], $55::text[])
            AS t(run_id, lease_token, status, outcome, status_reason, step_index, step_name, generation,
                 attempt, retry_base, open_attempt_id, needs_reconcile, next_run_in_ms, next_run_at,
                 lease_mode, lease_ms, context_patch, last_error, waiting_mode, next_poll_at,
                 next_reminder_at, paused_event_id, paused_event, record_id, prev_record_id,
                 cancelled_event_id, cancelled_event)
        ),
        upd AS (
            UPDATE vendorflow.runs AS r SET
                status = CASE WHEN ", cancel_now!(), " THEN 'cancelled'
                              WHEN ", pause_now!(), " THEN 'paused' ELSE t.status END,
                outcome = CASE WHEN ", stop_now!(), " THEN NULL ELSE t.outcome END,
                status_reason = CASE WHEN ", stop_now!(), " THEN r.status_reason ELSE t.status_reason END,
                step_index = t.step_index,
                step_name = t.step_name,
                generation = t.generation,
                attempt = CASE WHEN ", stop_now!(), " AND t.open_attempt_id IS NOT NULL
                               THEN t.attempt - 1 ELSE t.attempt END,
                retry_base = LEAST(t.retry_base,
                               CASE WHEN ", stop_now!(), " AND t.open_attempt_id IS NOT NULL
                                    THEN t.attempt - 1 ELSE t.attempt END),
                open_attempt_id = CASE WHEN ", stop_now!(), " THEN NULL ELSE t.open_attempt_id END,
                needs_reconcile = t.needs_reconcile,
                pause_requested = false,
                cancel_requested = CASE WHEN ", stop_now!(), " THEN false
                                        WHEN t.status IN ('pending', 'running', 'waiting') THEN r.cancel_requested
                                        ELSE false END,
                next_run_at = CASE WHEN ", stop_now!(), " THEN NULL
                                   WHEN t.next_run_in_ms IS NOT NULL
                                   THEN now() + t.next_run_in_ms * interval '1 millisecond'
                                   ELSE t.next_run_at END,
                lease_owner = CASE WHEN t.lease_mode = 2 OR ", stop_now!(), "
                                   THEN NULL ELSE r.lease_owner END,
                lease_expires_at = CASE WHEN t.lease_mode = 2 OR ", stop_now!(), " THEN NULL
                                        WHEN t.lease_mode = 1 THEN now() + t.lease_ms * interval '1 millisecond'
                                        ELSE r.lease_expires_at END,
                context = CASE WHEN t.context_patch IS NULL THEN r.context ELSE r.context || t.context_patch END,
                last_error = t.last_error,
                waiting_since = CASE t.waiting_mode WHEN 1 THEN now() WHEN 2 THEN NULL ELSE r.waiting_since END,
                next_poll_at = t.next_poll_at,
                next_reminder_at = t.next_reminder_at,
                last_record_id = t.record_id,
                record_failures = CASE WHEN r.step_index = t.step_index AND r.generation = t.generation
                                            AND r.attempt = t.attempt
                                       THEN r.record_failures ELSE 0 END,
                updated_at = now(),
                finished_at = CASE WHEN ", cancel_now!(), " OR t.status IN ('succeeded', 'failed', 'cancelled')
                                   THEN clock_timestamp() ELSE NULL END
            FROM t
            WHERE r.id = t.run_id AND r.lease_token = t.lease_token AND r.status = 'running'
              AND r.last_record_id IS NOT DISTINCT FROM t.prev_record_id
            RETURNING r.id, r.status, r.status_reason, r.marketplace_id, r.workflow, r.subject_id,
                      (r.status IN ('paused', 'cancelled') AND r.status <> t.status) AS stopped_on_request,
                      t.paused_event_id, t.paused_event, t.cancelled_event_id, t.cancelled_event
        ),
        fin AS (
            UPDATE vendorflow.attempts AS a
            SET finished_at = clock_timestamp(), outcome = f.outcome, error = f.error,
                duration_ms = GREATEST(0, (extract(epoch FROM clock_timestamp() - a.started_at) * 1000)::int8)
            FROM unnest($24::uuid[], $25::uuid[], $26::text[], $27::jsonb[]) AS f(run_id, attempt_id, outcome, error)
            JOIN upd ON upd.id = f.run_id
            WHERE a.id = f.attempt_id AND a.finished_at IS NULL
        ),
        st AS (
            INSERT INTO vendorflow.attempts
                (id, run_id, step_index, step_name, generation, attempt, worker_id, lease_token)
            SELECT s.id, s.run_id, s.step_index, s.step_name, s.generation, s.attempt, s.worker_id, s.lease_token
            FROM unnest($28::uuid[], $29::uuid[], $30::int4[], $31::text[], $32::int4[], $33::int4[],
                        $34::text[], $35::int8[])
                AS s(id, run_id, step_index, step_name, generation, attempt, worker_id, lease_token)
            JOIN upd ON upd.id = s.run_id AND NOT upd.stopped_on_request
        ),
        hi AS (
            INSERT INTO vendorflow.run_history (run_id, kind, step_name, attempt, actor_kind, actor_id, reason, data)
            SELECT x.run_id, x.kind, x.step_name, x.attempt, x.actor_kind, x.actor_id, x.reason, x.data
            FROM (
                SELECT h.run_id, h.kind, h.step_name, h.attempt, h.actor_kind, h.actor_id, h.reason, h.data, h.ord
                FROM unnest($36::uuid[], $37::text[], $38::text[], $39::int4[], $40::text[], $41::text[],
                            $42::text[], $43::jsonb[], $44::bool[]) WITH ORDINALITY
                    AS h(run_id, kind, step_name, attempt, actor_kind, actor_id, reason, data, only_if_continuing, ord)
                JOIN upd ON upd.id = h.run_id
                WHERE NOT (h.only_if_continuing AND upd.stopped_on_request)
                UNION ALL
                SELECT upd.id, upd.status, NULL, NULL, 'system', 'engine',
                       CASE upd.status WHEN 'cancelled' THEN 'the cancel an operator requested took effect'
                                       ELSE 'the pause an operator requested took effect' END,
                       NULL, 9223372036854775807
                FROM upd WHERE upd.stopped_on_request
            ) AS x
            ORDER BY x.ord
        ),
        ob AS (
            INSERT INTO vendorflow.outbox (id, marketplace_id, run_id, event_type, payload)
            SELECT o.id, upd.marketplace_id, o.run_id, o.event_type, o.payload
            FROM unnest($45::uuid[], $46::uuid[], $47::text[], $48::jsonb[]) AS o(id, run_id, event_type, payload)
            JOIN upd ON upd.id = o.run_id
            UNION ALL
            SELECT upd.paused_event_id, upd.marketplace_id, upd.id, upd.paused_event,
                   jsonb_build_object('run_id', upd.id, 'workflow', upd.workflow, 'subject_id', upd.subject_id,
                                      'status', 'paused')
                   -- The vendor state of `domain::vendor_state::event_state` for a paused onboarding.
                   || CASE WHEN upd.workflow = 'vendor_onboarding'
                           THEN jsonb_build_object('state', 'action_required') ELSE '{}'::jsonb END
            FROM upd WHERE upd.stopped_on_request AND upd.status = 'paused' AND upd.paused_event IS NOT NULL
            UNION ALL
            SELECT upd.cancelled_event_id, upd.marketplace_id, upd.id, upd.cancelled_event,
                   jsonb_build_object('run_id', upd.id, 'workflow', upd.workflow, 'subject_id', upd.subject_id,
                                      'marketplace_id', upd.marketplace_id, 'status', 'cancelled',
                                      'reason', upd.status_reason)
                   || CASE WHEN upd.workflow = 'vendor_onboarding'
                           THEN jsonb_build_object('state', 'cancelled') ELSE '{}'::jsonb END
            FROM upd WHERE upd.stopped_on_request AND upd.status = 'cancelled' AND upd.cancelled_event IS NOT NULL
        ),
        sg AS (
            UPDATE vendorflow.signals AS sig SET consumed_at = clock_timestamp(), consumed_step = c.step_name
            FROM unnest($49::uuid[], $50::uuid[], $51::text[]) AS c(id, run_id, step_name)
            JOIN upd ON upd.id = c.run_id
            WHERE sig.id = c.id AND sig.consumed_at IS NULL
        )
        SELECT id, status, stopped_on_request FROM upd",
    ))
    .bind(t.iter().map(|x| x.run_id).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.lease_token).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.status.as_str()).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.outcome.as_deref()).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.status_reason.as_deref()).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.step_index).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.step_name.as_str()).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.generation).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.attempt).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.retry_base).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.open_attempt_id).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.needs_reconcile).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.next_run_in_ms).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.next_run_at).collect::<Vec<_>>())
    .bind(&lease_mode)
    .bind(&lease_ms)
    .bind(t.iter().map(|x| x.context_patch.clone()).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.last_error.clone()).collect::<Vec<_>>())
    .bind(&waiting_mode)
    .bind(t.iter().map(|x| x.next_poll_at).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.next_reminder_at).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.paused_event.as_ref().map(|p| p.0)).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.paused_event.as_ref().map(|p| p.1.as_str())).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.run_id).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.attempt_id).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.outcome.as_str()).collect::<Vec<_>>())
    .bind(f.iter().map(|x| x.error.clone()).collect::<Vec<_>>())
    .bind(s.iter().map(|x| x.id).collect::<Vec<_>>())
    .bind(s.iter().map(|x| x.run_id).collect::<Vec<_>>())
    .bind(s.iter().map(|x| x.step_index).collect::<Vec<_>>())
    .bind(s.iter().map(|x| x.step_name.as_str()).collect::<Vec<_>>())
    .bind(s.iter().map(|x| x.generation).collect::<Vec<_>>())
    .bind(s.iter().map(|x| x.attempt).collect::<Vec<_>>())
    .bind(s.iter().map(|x| x.worker_id.as_str()).collect::<Vec<_>>())
    .bind(s.iter().map(|x| x.lease_token).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.run_id).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.kind.as_str()).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.step_name.as_deref()).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.attempt).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.actor_kind.as_str()).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.actor_id.as_str()).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.reason.as_deref()).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.data.clone()).collect::<Vec<_>>())
    .bind(h.iter().map(|x| x.only_if_continuing).collect::<Vec<_>>())
    .bind(o.iter().map(|x| x.id).collect::<Vec<_>>())
    .bind(o.iter().map(|x| x.run_id).collect::<Vec<_>>())
    .bind(o.iter().map(|x| x.event_type.as_str()).collect::<Vec<_>>())
    .bind(o.iter().map(|x| x.payload.clone()).collect::<Vec<_>>())
    .bind(g.iter().map(|x| x.signal_id).collect::<Vec<_>>())
    .bind(g.iter().map(|x| x.run_id).collect::<Vec<_>>())
    .bind(g.iter().map(|x| x.step_name.as_str()).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.record_id).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.prev_record_id).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.cancelled_event.as_ref().map(|p| p.0)).collect::<Vec<_>>())
    .bind(t.iter().map(|x| x.cancelled_event.as_ref().map(|p| p.1.as_str())).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
}

/// Locks a run the caller holds, for a wait step's decision: `SELECT … FOR NO KEY UPDATE`,
/// fenced by the lease token. Returns the database's `now()` if the lease holds.
///
/// A signal is sent under the same row lock (see `signals::insert`), so a wait step that
/// checks for its signal after this lock, in the same transaction, either sees the signal or is
/// seen as `waiting` by the signal's sender, which then wakes it: no signal is lost.
pub async fn lock_leased(
    conn: &mut PgConnection,
    run_id: Uuid,
    lease_token: i64,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT now() FROM vendorflow.runs
         WHERE id = $1 AND lease_token = $2 AND status = 'running'
         FOR NO KEY UPDATE",
    )
    .bind(run_id)
    .bind(lease_token)
    .fetch_optional(&mut *conn)
    .await
}

/// A rescued run.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Rescued {
    pub id: Uuid,
    pub previous_owner: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
}

/// Rescues up to `limit` runs whose lease expired: each goes back to `pending` (due now), or to
/// `paused` if an operator had requested a pause; its lease token is incremented so the worker
/// that held it can no longer write; and a `rescued` event naming the previous owner is appended.
/// One statement; `SKIP LOCKED` plus the status condition make each rescue happen exactly once
/// even when several schedulers run.
pub async fn rescue_expired(
    conn: &mut PgConnection,
    limit: i64,
) -> Result<Vec<Rescued>, sqlx::Error> {
    sqlx::query_as(
        "WITH expired AS (
            SELECT id, lease_owner FROM vendorflow.runs
            WHERE status = 'running' AND lease_expires_at < now()
            ORDER BY lease_expires_at
            LIMIT $1
            FOR NO KEY UPDATE SKIP LOCKED
        ),
        upd AS (
            UPDATE vendorflow.runs AS r
            SET status = CASE WHEN r.pause_requested THEN 'paused' ELSE 'pending' END,
                next_run_at = CASE WHEN r.pause_requested THEN NULL ELSE now() END,
                pause_requested = false,
                lease_owner = NULL, lease_expires_at = NULL, lease_token = r.lease_token + 1,
                updated_at = now()
            FROM expired WHERE r.id = expired.id
            RETURNING r.id, expired.lease_owner AS previous_owner, r.status, r.step_name, r.attempt
        ),
        h AS (
            INSERT INTO vendorflow.run_history (run_id, kind, step_name, attempt, reason, data)
            SELECT id, 'rescued', step_name, attempt, 'the lease of the worker holding the run expired',
                   jsonb_build_object('previous_owner', previous_owner, 'status', status)
            FROM upd
        )
        SELECT id, previous_owner, status FROM upd",
    )
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// Wakes up to `limit` waiting runs whose next timer (poll, reminder or deadline) is due: they
/// become `pending`, due now, and a worker evaluates their wait. One statement.
pub async fn wake_due_waits(conn: &mut PgConnection, limit: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "WITH due AS (
            SELECT id FROM vendorflow.runs
            WHERE status = 'waiting' AND next_run_at <= now()
            ORDER BY next_run_at
            LIMIT $1
            FOR NO KEY UPDATE SKIP LOCKED
        )
        UPDATE vendorflow.runs AS r SET status = 'pending', next_run_at = now(), updated_at = now()
        FROM due WHERE r.id = due.id",
    )
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes up to `limit` runs that ended more than `older_than_ms` ago, with their attempts,
/// history and signals (ON DELETE CASCADE). Outbox rows are kept: their delivery is the relay's.
pub async fn delete_finished(
    conn: &mut PgConnection,
    older_than_ms: i64,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "DELETE FROM vendorflow.runs WHERE id IN (
            SELECT id FROM vendorflow.runs
            WHERE created_at < now() - $1 * interval '1 millisecond'
              AND status IN ('succeeded', 'failed', 'cancelled')
              AND finished_at < now() - $1 * interval '1 millisecond'
            LIMIT $2
        )",
    )
    .bind(older_than_ms)
    .bind(limit)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// NOTIFYs the workers that runs are due (delivered when the caller's transaction commits).
pub async fn notify_due(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(NOTIFY_CHANNEL)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// One run by id.
pub async fn get(conn: &mut PgConnection, id: Uuid) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM vendorflow.runs AS r WHERE r.id = $1"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// One run by id, locked (`FOR NO KEY UPDATE`) until the caller's transaction ends; the
/// operations take this lock first so that they serialise with workers' records and signals.
pub async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM vendorflow.runs AS r WHERE r.id = $1 FOR NO KEY UPDATE"
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
}

/// The runs of a subject (a vendor), newest first.
pub async fn list_for_subject(
    conn: &mut PgConnection,
    subject_id: Uuid,
    limit: i64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as(concat!(
        "SELECT ",
        run_columns!(),
        " FROM vendorflow.runs AS r WHERE r.subject_id = $1 ORDER BY r.created_at DESC LIMIT $2"
    ))
    .bind(subject_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
}

/// The state an operator's operation gives a locked run (see [`lock`]).
#[derive(Debug, Clone)]
pub struct OperatorChange {
    pub run_id: Uuid,
    pub status: RunStatus,
    pub status_reason: Option<String>,
    pub step_index: i32,
    pub step_name: String,
    pub generation: i32,
    pub attempt: i32,
    pub retry_base: i32,
    pub open_attempt_id: Option<Uuid>,
    pub needs_reconcile: bool,
    pub pause_requested: bool,
    pub cancel_requested: bool,
    /// `next_run_at = now() + ms`, or NULL.
    pub next_run_in_ms: Option<i64>,
    /// Clear the lease and increment the lease token, so that a worker holding the run can no
    /// longer write.
    pub release_lease: bool,
    /// Clear `waiting_since`, `next_poll_at` and `next_reminder_at` (a wait starts afresh).
    pub clear_wait_timers: bool,
}

/// Applies an operator's change to a run the caller locked with [`lock`].
pub async fn apply_operator_change(
    conn: &mut PgConnection,
    change: &OperatorChange,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE vendorflow.runs SET
            status = $2, status_reason = $3, step_index = $4, step_name = $5, generation = $6,
            attempt = $7, retry_base = $8, open_attempt_id = $9, needs_reconcile = $10,
            pause_requested = $11, cancel_requested = $15,
            next_run_at = CASE WHEN $12::int8 IS NULL THEN NULL ELSE now() + $12 * interval '1 millisecond' END,
            lease_owner = CASE WHEN $13 THEN NULL ELSE lease_owner END,
            lease_expires_at = CASE WHEN $13 THEN NULL ELSE lease_expires_at END,
            lease_token = lease_token + CASE WHEN $13 THEN 1 ELSE 0 END,
            waiting_since = CASE WHEN $14 THEN NULL ELSE waiting_since END,
            next_poll_at = CASE WHEN $14 THEN NULL ELSE next_poll_at END,
            next_reminder_at = CASE WHEN $14 THEN NULL ELSE next_reminder_at END,
            outcome = NULL,
            finished_at = CASE WHEN $2 IN ('succeeded', 'failed', 'cancelled') THEN clock_timestamp() ELSE NULL END,
            updated_at = now()
         WHERE id = $1",
    )
    .bind(change.run_id)
    .bind(change.status.as_str())
    .bind(&change.status_reason)
    .bind(change.step_index)
    .bind(&change.step_name)
    .bind(change.generation)
    .bind(change.attempt)
    .bind(change.retry_base)
    .bind(change.open_attempt_id)
    .bind(change.needs_reconcile)
    .bind(change.pause_requested)
    .bind(change.next_run_in_ms)
    .bind(change.release_lease)
    .bind(change.clear_wait_timers)
    .bind(change.cancel_requested)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Wakes a waiting run at `step_index` (its wait step) so a worker consumes a signal: it becomes
/// `pending`, due now. Does nothing if the run is not waiting there.
pub async fn wake_waiting(
    conn: &mut PgConnection,
    run_id: Uuid,
    step_index: i32,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE vendorflow.runs SET status = 'pending', next_run_at = now(), updated_at = now()
         WHERE id = $1 AND status = 'waiting' AND step_index = $2",
    )
    .bind(run_id)
    .bind(step_index)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes every run of a marketplace with its attempts, history and signals, and the outbox
/// rows of that marketplace (the benchmark cleans up after itself with this).
pub async fn delete_for_marketplace(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "WITH o AS (DELETE FROM vendorflow.outbox WHERE marketplace_id = $1)
         DELETE FROM vendorflow.runs WHERE marketplace_id = $1",
    )
    .bind(marketplace_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

/// How many runs of a marketplace succeeded (the benchmark waits on it).
pub async fn count_succeeded_for_marketplace(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM vendorflow.runs WHERE marketplace_id = $1 AND status = 'succeeded'",
    )
    .bind(marketplace_id)
    .fetch_one(&mut *conn)
    .await
}

/// Enqueue-to-end latencies of a marketplace's finished runs, and the span from the first
/// enqueue to the last end, in milliseconds, by the database's timestamps.
#[derive(Debug, Clone, Default)]
pub struct Latencies {
    pub latencies_ms: Vec<f64>,
    pub span_ms: f64,
}

/// The latencies of a marketplace's finished runs (for the benchmark).
pub async fn latencies_for_marketplace(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
) -> Result<Latencies, sqlx::Error> {
    let latencies_ms: Vec<f64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM finished_at - created_at) * 1000)::float8
         FROM vendorflow.runs WHERE marketplace_id = $1 AND finished_at IS NOT NULL",
    )
    .bind(marketplace_id)
    .fetch_all(&mut *conn)
    .await?;
    let span_ms: Option<f64> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM max(finished_at) - min(created_at)) * 1000)::float8
         FROM vendorflow.runs WHERE marketplace_id = $1",
    )
    .bind(marketplace_id)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Latencies {
        latencies_ms,
        span_ms: span_ms.unwrap_or(0.0),
    })
}

/// History events of a marketplace's runs (for the benchmark's report).
pub async fn history_count_for_marketplace(
    conn: &mut PgConnection,
    marketplace_id: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM vendorflow.run_history h
         JOIN vendorflow.runs r ON r.id = h.run_id WHERE r.marketplace_id = $1",
    )
    .bind(marketplace_id)
    .fetch_one(&mut *conn)
    .await
}

/// A run's enqueue-to-end latency in milliseconds, once it has ended.
pub async fn latency_if_finished(
    conn: &mut PgConnection,
    id: Uuid,
) -> Result<Option<f64>, sqlx::Error> {
    let latency: Option<Option<f64>> = sqlx::query_scalar(
        "SELECT (extract(epoch FROM finished_at - created_at) * 1000)::float8
         FROM vendorflow.runs WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(latency.flatten())
}

/// The status of the run if `record_id` is the last record written for it, i.e. whether a record
/// whose commit acknowledgement was lost (or whose replay wrote nothing) had in fact committed.
pub async fn record_applied(
    conn: &mut PgConnection,
    run_id: Uuid,
    record_id: Uuid,
) -> Result<Option<RunStatus>, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM vendorflow.runs WHERE id = $1 AND last_record_id = $2",
    )
    .bind(run_id)
    .bind(record_id)
    .fetch_optional(&mut *conn)
    .await?;
    status
        .map(|s| s.parse().map_err(|e| sqlx::Error::Decode(Box::new(e))))
        .transpose()
}

/// Extends the lease of a run whose handler is still running to `now() + lease_ms`: the
/// heartbeat. Fenced by the lease token and the open attempt (`None` while a reconcile runs
/// before any attempt is open), so a worker that lost the run can never extend it. Returns
/// whether the lease was extended.
pub async fn heartbeat(
    conn: &mut PgConnection,
    run_id: Uuid,
    lease_token: i64,
    open_attempt_id: Option<Uuid>,
    lease_ms: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE vendorflow.runs SET lease_expires_at = now() + $4 * interval '1 millisecond'
         WHERE id = $1 AND lease_token = $2 AND status = 'running'
           AND open_attempt_id IS NOT DISTINCT FROM $3",
    )
    .bind(run_id)
    .bind(lease_token)
    .bind(open_attempt_id)
    .bind(lease_ms)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Counts one more failure to record the current attempt's outcome of a run the caller holds
/// (fenced by the lease token), and returns the count so far (`None` if the lease was lost). The
/// count goes back to zero when a record moves the run to another step, generation or attempt.
pub async fn note_record_failure(
    conn: &mut PgConnection,
    run_id: Uuid,
    lease_token: i64,
) -> Result<Option<i32>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE vendorflow.runs SET record_failures = record_failures + 1
         WHERE id = $1 AND lease_token = $2 AND status = 'running'
         RETURNING record_failures",
    )
    .bind(run_id)
    .bind(lease_token)
    .fetch_optional(&mut *conn)
    .await
}
