-- The durable engine: pinned workflow definitions, runs (the queue), attempts, the append-only
-- run history, signals, and the transactional outbox. The rules each table enforces are written
-- next to it; the engine's invariants are described in crates/engine/src/lib.rs.

-- Every definition a run ever started with, by content hash, so that a run keeps executing the
-- exact steps it started with even after workflows/*.toml changes or is deleted.
CREATE TABLE vendorflow.workflow_definitions (
    workflow      text NOT NULL,
    content_hash  text NOT NULL CONSTRAINT workflow_definition_hash_is_sha256 CHECK (content_hash ~ '^[0-9a-f]{64}$'),
    version       integer NOT NULL CONSTRAINT workflow_definition_version_positive CHECK (version >= 1),
    file_name     text NOT NULL,
    source        text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_definitions_pkey PRIMARY KEY (workflow, content_hash)
);

-- One row per workflow run. The table is also the queue: workers claim `pending` rows whose
-- `next_run_at` is due with FOR UPDATE SKIP LOCKED and take a lease, fenced by `lease_token`,
-- which every change of ownership (claim, rescue, cancel, pause) increments.
-- The fill factor leaves room on each page so that updates which change no indexed column (a
-- worker advancing a run it holds from one step to the next) stay heap-only (HOT).
CREATE TABLE vendorflow.runs (
    id                uuid PRIMARY KEY,
    workflow          text NOT NULL,
    workflow_version  integer NOT NULL,
    content_hash      text NOT NULL,
    marketplace_id    uuid REFERENCES vendorflow.marketplaces (id),
    subject_id        uuid REFERENCES vendorflow.vendors (id),
    status            text NOT NULL,
    -- For a succeeded run: `completed` when the last step finished, or the business outcome a
    -- step ended the run with (for example `declined`).
    outcome           text,
    -- Why the run is paused or failed, or why a pause was requested, in words for an operator.
    status_reason     text,
    step_index        integer NOT NULL DEFAULT 0,
    step_name         text NOT NULL,
    -- Incremented when an operator resumes from a step; part of the idempotency key.
    generation        integer NOT NULL DEFAULT 0,
    -- Attempts started at the current step in this generation, and the count at which the
    -- current retry budget began (an operator's retry or resume grants a fresh budget).
    attempt           integer NOT NULL DEFAULT 0,
    retry_base        integer NOT NULL DEFAULT 0,
    -- The attempt whose outcome is not recorded yet; found set at claim time, it means a worker
    -- died or lost its lease after starting it, and the handler must reconcile first.
    open_attempt_id   uuid,
    -- The last attempt ended with an unknown outcome: reconcile before the next one.
    needs_reconcile   boolean NOT NULL DEFAULT false,
    -- A pause asked for while a worker held the run; applied at its next record.
    pause_requested   boolean NOT NULL DEFAULT false,
    last_error        jsonb,
    next_run_at       timestamptz,
    lease_owner       text,
    lease_expires_at  timestamptz,
    lease_token       bigint NOT NULL DEFAULT 0,
    -- Timers of a wait step: when the run began waiting, and its next poll and reminder.
    waiting_since     timestamptz,
    next_poll_at      timestamptz,
    next_reminder_at  timestamptz,
    input             jsonb NOT NULL DEFAULT '{}',
    context           jsonb NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    CONSTRAINT run_status_known
        CHECK (status IN ('pending', 'running', 'waiting', 'paused', 'succeeded', 'failed', 'cancelled')),
    CONSTRAINT run_outcome_only_when_succeeded CHECK ((status = 'succeeded') = (outcome IS NOT NULL)),
    CONSTRAINT run_finished_iff_terminal
        CHECK ((status IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT run_running_has_lease
        CHECK (status <> 'running' OR (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL)),
    CONSTRAINT run_pending_is_scheduled CHECK (status <> 'pending' OR next_run_at IS NOT NULL),
    CONSTRAINT run_counters_valid
        CHECK (attempt >= 0 AND retry_base >= 0 AND retry_base <= attempt AND generation >= 0 AND step_index >= 0),
    CONSTRAINT run_input_is_object CHECK (jsonb_typeof(input) = 'object'),
    CONSTRAINT run_context_is_object CHECK (jsonb_typeof(context) = 'object'),
    CONSTRAINT run_definition_pinned FOREIGN KEY (workflow, content_hash)
        REFERENCES vendorflow.workflow_definitions (workflow, content_hash)
) WITH (fillfactor = 70);

-- The hot path: indexes over active runs only, so millions of finished runs cost nothing here.
CREATE INDEX runs_due ON vendorflow.runs (next_run_at) WHERE status = 'pending';
CREATE INDEX runs_waiting_timers ON vendorflow.runs (next_run_at) WHERE status = 'waiting';
CREATE INDEX runs_leases ON vendorflow.runs (lease_expires_at) WHERE status = 'running';
-- Scoping for the API (a marketplace's runs, a vendor's runs); these columns never change, so
-- they do not prevent heap-only updates.
CREATE INDEX runs_marketplace ON vendorflow.runs (marketplace_id, created_at) WHERE marketplace_id IS NOT NULL;
CREATE INDEX runs_subject ON vendorflow.runs (subject_id, created_at) WHERE subject_id IS NOT NULL;
-- Retention scans by age; a BRIN index is tiny and is never touched by updates.
CREATE INDEX runs_created_brin ON vendorflow.runs USING brin (created_at);

-- One row per try of an action step: inserted (started) before the handler is called, finished in
-- the same transaction that records the outcome.
CREATE TABLE vendorflow.attempts (
    id           uuid PRIMARY KEY,
    run_id       uuid NOT NULL REFERENCES vendorflow.runs (id) ON DELETE CASCADE,
    step_index   integer NOT NULL,
    step_name    text NOT NULL,
    generation   integer NOT NULL,
    attempt      integer NOT NULL CONSTRAINT attempt_number_positive CHECK (attempt >= 1),
    worker_id    text NOT NULL,
    lease_token  bigint NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    finished_at  timestamptz,
    outcome      text CONSTRAINT attempt_outcome_known
        CHECK (outcome IN ('succeeded', 'finished', 'retryable', 'fatal', 'unknown', 'paused', 'abandoned')),
    -- The error envelope {code, message, retryable, details}, redacted.
    error        jsonb,
    duration_ms  bigint,
    CONSTRAINT attempt_finished_has_outcome CHECK ((finished_at IS NULL) = (outcome IS NULL)),
    -- Two attempts can never carry the same number: a double start is a bug the database refuses.
    CONSTRAINT attempt_number_unique UNIQUE (run_id, generation, step_index, attempt)
);

-- The append-only event list of each run; payloads are redacted before they are written.
CREATE TABLE vendorflow.run_history (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id      uuid NOT NULL REFERENCES vendorflow.runs (id) ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind        text NOT NULL CONSTRAINT history_kind_known CHECK (kind IN (
        'created', 'step_started', 'step_succeeded', 'step_failed', 'step_skipped', 'backoff_scheduled',
        'reconciled', 'waiting', 'signal_received', 'wait_completed', 'poll', 'reminder', 'deadline_reached',
        'pause_requested', 'paused', 'resumed', 'retry_requested', 'resumed_from', 'rescued', 'cancelled',
        'succeeded', 'failed')),
    step_name   text,
    attempt     integer,
    -- Who caused the event (`system`, `worker`, `operator`, `backend`, `cli`) and why.
    actor_kind  text NOT NULL DEFAULT 'system',
    actor_id    text NOT NULL DEFAULT 'engine',
    reason      text,
    data        jsonb
);
CREATE INDEX run_history_run ON vendorflow.run_history (run_id, id);

-- History is append-only: rows may be deleted by retention (with their run), never changed.
CREATE FUNCTION vendorflow.refuse_history_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'vendorflow.run_history is append-only';
END;
$$;
CREATE TRIGGER run_history_append_only BEFORE UPDATE ON vendorflow.run_history
    FOR EACH ROW EXECUTE FUNCTION vendorflow.refuse_history_update();

-- Signals sent to runs. A signal that arrives before its run reaches the wait is kept here and
-- consumed when the run gets there.
CREATE TABLE vendorflow.signals (
    id             uuid PRIMARY KEY,
    run_id         uuid NOT NULL REFERENCES vendorflow.runs (id) ON DELETE CASCADE,
    name           text NOT NULL,
    payload        jsonb NOT NULL DEFAULT '{}',
    actor_kind     text NOT NULL,
    actor_id       text NOT NULL,
    reason         text,
    received_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    consumed_at    timestamptz,
    consumed_step  text,
    CONSTRAINT signal_consumed_names_step CHECK ((consumed_at IS NULL) = (consumed_step IS NULL))
);
CREATE INDEX signals_unconsumed ON vendorflow.signals (run_id, name, received_at) WHERE consumed_at IS NULL;

-- The transactional outbox: the engine only INSERTS, in the same transaction as the state change
-- the event describes. Delivery (attempts, signatures, dead letters) belongs to the relay, which
-- keeps its own tables keyed by `outbox.id`. Ids are UUIDv7, so their order is creation order.
CREATE TABLE vendorflow.outbox (
    id              uuid PRIMARY KEY,
    marketplace_id  uuid REFERENCES vendorflow.marketplaces (id),
    run_id          uuid,
    event_type      text NOT NULL CONSTRAINT outbox_event_type_not_blank CHECK (btrim(event_type) <> ''),
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_run ON vendorflow.outbox (run_id) WHERE run_id IS NOT NULL;
