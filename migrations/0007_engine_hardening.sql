-- Engine hardening (issue 9): a cancel asked for while a step is in flight is applied at the
-- worker's next record, so the step's outcome is kept; records are idempotent by identity, so a
-- record replayed after a lost commit acknowledgement writes nothing twice; failures to record a
-- step are counted per attempt, so a record that can never be written pauses the run instead of
-- looping through lease expiry.

-- A cancel asked for while a worker held the run, or while its last attempt's outcome was still
-- to be reconciled: the next record that leaves nothing to reconcile ends the run `cancelled`
-- (after writing that record's outcome, outbox rows and writes).
ALTER TABLE vendorflow.runs ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
-- The id of the last record written for the run. Every record names the record it follows
-- (`WHERE last_record_id IS NOT DISTINCT FROM $prev`): a replay of a record that already
-- committed, or a record built on a stale view of the run, writes nothing; and a worker that lost
-- the answer to its commit can ask whether its record is the run's last.
ALTER TABLE vendorflow.runs ADD COLUMN last_record_id uuid;
-- Failed attempts to record the current attempt's outcome (reset whenever the run moves to
-- another step, generation or attempt).
ALTER TABLE vendorflow.runs ADD COLUMN record_failures integer NOT NULL DEFAULT 0;

ALTER TABLE vendorflow.run_history DROP CONSTRAINT history_kind_known;
ALTER TABLE vendorflow.run_history ADD CONSTRAINT history_kind_known CHECK (kind IN (
    'created', 'step_started', 'step_succeeded', 'step_failed', 'step_skipped', 'backoff_scheduled',
    'reconciled', 'waiting', 'signal_received', 'wait_completed', 'poll', 'reminder', 'deadline_reached',
    'pause_requested', 'paused', 'resumed', 'retry_requested', 'resumed_from', 'rescued', 'cancelled',
    'succeeded', 'failed', 'cancel_requested'));
