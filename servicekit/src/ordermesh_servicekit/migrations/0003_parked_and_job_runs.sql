-- Parked: records that arrived before what they depend on, kept (not acknowledged and forgotten) until it arrives.
-- One row per Kafka record position, so a record redelivered after a rebalance is parked once.
CREATE TABLE parked (
    id            bigserial   PRIMARY KEY,
    topic         text        NOT NULL,
    partition     integer     NOT NULL,
    kafka_offset  bigint      NOT NULL,
    key           bytea,
    value         bytea       NOT NULL,
    headers       jsonb       NOT NULL DEFAULT '[]'::jsonb,
    waiting_for   text        NOT NULL,
    reason        text        NOT NULL,
    parked_at     timestamptz NOT NULL DEFAULT now(),
    attempts      integer     NOT NULL DEFAULT 0,
    claimed_by    text,
    claimed_until timestamptz,
    UNIQUE (topic, partition, kafka_offset)
);
CREATE INDEX parked_waiting_for ON parked (waiting_for);
CREATE INDEX parked_lane ON parked (topic, key, id);

-- Job runs: one row per periodic job and period; the replica that inserts it runs the job for that period.
CREATE TABLE job_runs (
    job          text        NOT NULL,
    period_start timestamptz NOT NULL,
    owner        text        NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    PRIMARY KEY (job, period_start)
);
