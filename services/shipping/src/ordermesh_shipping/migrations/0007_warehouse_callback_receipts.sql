-- Warehouse callbacks accepted, by their event id: a replayed callback is refused (409) instead of queued again.
CREATE TABLE warehouse_callback_receipts (
    event_id    uuid        PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
