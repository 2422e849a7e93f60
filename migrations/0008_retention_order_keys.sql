-- Retention and order keys: the indexes the scheduler's retention jobs delete through in bounded
-- batches, and the order key of charge and document runs as a real, uniquely indexed column.

-- A charge's `order_id` and a document's `reference`: the marketplace's key of the order, unique
-- per (marketplace, vendor, workflow). The unique index below enforces it, so two requests for
-- the same order under different idempotency keys cannot both enqueue a run, with no lock and no
-- lookup before the insert. The column is written once, at enqueue, and never changes, so it
-- does not prevent heap-only updates of a running run.
ALTER TABLE vendorflow.runs ADD COLUMN order_key text;

-- Existing runs take their key from their input. Should two runs of one order exist (from before
-- the API serialised them), the earliest keeps the key, as the API's lookup always answered.
UPDATE vendorflow.runs AS r
SET order_key = k.order_key
FROM (
    SELECT DISTINCT ON (marketplace_id, subject_id, workflow, order_key) id, order_key
    FROM (
        SELECT id, marketplace_id, subject_id, workflow, created_at,
               CASE workflow
                   WHEN 'vendor_charge' THEN input ->> 'order_id'
                   WHEN 'vendor_document' THEN input ->> 'reference'
               END AS order_key
        FROM vendorflow.runs
        WHERE workflow IN ('vendor_charge', 'vendor_document')
    ) AS keyed
    WHERE order_key IS NOT NULL
    ORDER BY marketplace_id, subject_id, workflow, order_key, created_at, id
) AS k
WHERE r.id = k.id;

CREATE UNIQUE INDEX runs_order_key ON vendorflow.runs (marketplace_id, subject_id, workflow, order_key)
    WHERE order_key IS NOT NULL;

-- Retention of webhook deliveries finds finished ones (delivered or dead letters) by the time
-- they last changed. Pending deliveries, the relay's hot path, are not in this index; their
-- updates already change the indexed `next_attempt_at`, so they were never heap-only anyway.
CREATE INDEX webhook_deliveries_finished ON vendorflow.webhook_deliveries (updated_at)
    WHERE status <> 'pending';

-- Retention of the outbox scans by age; the outbox is insert-only, so a BRIN index is tiny and
-- exact enough.
CREATE INDEX outbox_created_brin ON vendorflow.outbox USING brin (created_at);
