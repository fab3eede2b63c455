-- One entry per cause, kind, customer and order: a bulk command's id causes entries for many orders and customers.
ALTER TABLE ledger DROP CONSTRAINT ledger_cause_id_kind_key;
CREATE UNIQUE INDEX ledger_once_per_cause
    ON ledger (cause_id, kind, shop_id, customer_id, COALESCE(order_id, '00000000-0000-0000-0000-000000000000'::uuid));
-- NOT VALID: the first version booked 0-point entries for guests; every new entry moves points.
ALTER TABLE ledger ADD CONSTRAINT ledger_points_positive CHECK (points > 0) NOT VALID;
ALTER TABLE ledger ADD COLUMN reason text, ADD COLUMN issued_by text;

-- Points used on the order (held at intake) and when payment was confirmed (for staff's bulk confirm by period).
ALTER TABLE order_points
    ADD COLUMN paid_at     timestamptz,
    ADD COLUMN reserved    bigint NOT NULL DEFAULT 0,
    ADD COLUMN reservation text   NOT NULL DEFAULT 'none';
CREATE INDEX order_points_paid ON order_points (shop_id, paid_at);

-- Every customer the service has seen per shop; its row is the lock that serialises one customer's balance.
CREATE TABLE customer_accounts (
    shop_id       text        NOT NULL,
    customer_id   text        NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, customer_id)
);
INSERT INTO customer_accounts (shop_id, customer_id)
SELECT DISTINCT shop_id, customer_id FROM ledger ON CONFLICT DO NOTHING;

-- Each shop's points rules; a shop without a row gets the defaults.
CREATE TABLE shop_settings (
    shop_id        text        PRIMARY KEY,
    rate_percent   integer     NOT NULL,
    campaigns      jsonb       NOT NULL DEFAULT '[]',
    confirm_on     text        NOT NULL,
    allow_negative boolean     NOT NULL,
    expiry_months  integer,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    updated_by     text        NOT NULL
);
