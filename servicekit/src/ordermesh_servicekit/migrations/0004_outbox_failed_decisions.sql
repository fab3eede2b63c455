-- What staff did with a row the relay moved aside: re-queued it to the outbox (as which new row) or discarded
-- it, by whom, when and why. Decided rows stay for the record.
ALTER TABLE outbox_failed
    ADD COLUMN status      text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'requeued', 'discarded')),
    ADD COLUMN decided_by  text,
    ADD COLUMN decided_at  timestamptz,
    ADD COLUMN reason      text,
    ADD COLUMN requeued_as bigint;
