-- A delivery group that fails a delivery-date or carrier label check is held back from the warehouse until staff
-- change its carrier or time slot, or confirm the check (per order: 'delivery_date', 'label').
ALTER TABLE deliveries
    ADD COLUMN held_checks  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN hold_reasons text[] NOT NULL DEFAULT '{}';

CREATE TABLE confirmed_checks (
    order_id     uuid        NOT NULL,
    category     text        NOT NULL,
    confirmed_by text        NOT NULL,
    confirmed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, category)
);
