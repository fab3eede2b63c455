-- Money facts per order beyond the card authorization, and what the prepaid flow needs.
ALTER TABLE payments
    ADD COLUMN capture_id       text,
    ADD COLUMN refunded_amount  bigint      NOT NULL DEFAULT 0,
    ADD COLUMN received_amount  bigint      NOT NULL DEFAULT 0,
    ADD COLUMN authorized_at    timestamptz,
    ADD COLUMN reference        text        UNIQUE,
    ADD COLUMN due_date         date,
    ADD COLUMN overdue_notified boolean     NOT NULL DEFAULT false,
    ADD COLUMN reauthorization_flagged boolean NOT NULL DEFAULT false;

-- Per-shop payment settings (defaults apply to a shop without a row).
CREATE TABLE payment_settings (
    shop_id                  text        PRIMARY KEY,
    capture_at_authorization boolean     NOT NULL DEFAULT false,
    prepaid_due_days         integer     NOT NULL DEFAULT 7,
    authorization_valid_days integer     NOT NULL DEFAULT 7,
    updated_by               text        NOT NULL,
    updated_at               timestamptz NOT NULL DEFAULT now()
);

-- Money received outside a card gateway; the source's own id makes each receipt count once.
CREATE TABLE received_payments (
    source_id   text        PRIMARY KEY,
    order_id    uuid        NOT NULL,
    source      text        NOT NULL,
    amount      bigint      NOT NULL,
    reference   text,
    note        text,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX received_payments_order ON received_payments (order_id);

-- Provider callbacks accepted by the ingress, by the provider's event id (a repeat is refused).
CREATE TABLE callback_receipts (
    provider_event_id text        PRIMARY KEY,
    received_at       timestamptz NOT NULL DEFAULT now()
);

-- Why staff made a gateway call (void, refund, retried capture).
ALTER TABLE gateway_calls ADD COLUMN note text;
