-- Outbox rows Kafka will never accept (too large, unknown topic, not authorized), moved aside by the
-- relay with the error so the rows after them are published; staff can fix and re-queue them.
CREATE TABLE outbox_failed (
    id         bigint      PRIMARY KEY,
    topic      text        NOT NULL,
    key        bytea,
    headers    jsonb       NOT NULL,
    payload    bytea       NOT NULL,
    created_at timestamptz NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now(),
    error      text        NOT NULL
);

-- Records whose dead letter could only be written in a sanitized form (cut, headers left out):
-- the record exactly as it was consumed.
CREATE TABLE dead_letter_originals (
    id             bigserial   PRIMARY KEY,
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    partition      integer     NOT NULL,
    "offset"       bigint      NOT NULL,
    key            bytea,
    value          bytea,
    headers        bytea       NOT NULL,
    reason         text        NOT NULL,
    kept_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (consumer_group, topic, partition, "offset")
);
