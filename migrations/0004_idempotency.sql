-- Idempotency keys of the marketplace API (Stripe's rules): the same key with the same request
-- replays the stored response; the same key with another request is a conflict. The row is
-- inserted first in the transaction that does the work, so a concurrent duplicate waits on the
-- primary key until the first commits (then replays) or rolls back (then does the work itself).
CREATE TABLE vendorflow.idempotency_keys (
    marketplace_id   uuid NOT NULL REFERENCES vendorflow.marketplaces (id),
    idempotency_key  text NOT NULL CONSTRAINT idempotency_key_length CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_method   text NOT NULL,
    request_path     text NOT NULL,
    request_hash     bytea NOT NULL,
    response_status  smallint,
    response_body    jsonb,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (marketplace_id, idempotency_key)
);
-- Retention deletes keys older than a day (Stripe keeps them at least 24 hours).
CREATE INDEX idempotency_keys_created ON vendorflow.idempotency_keys (created_at);
