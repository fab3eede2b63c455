-- Payment state per order.
CREATE TABLE payments (
    order_id          uuid        PRIMARY KEY,
    shop_id           text        NOT NULL,
    method            text        NOT NULL,
    currency          text        NOT NULL,
    amount            bigint      NOT NULL,
    authorization_id  text,
    authorized_amount bigint,
    captured_amount   bigint      NOT NULL DEFAULT 0,
    status            text        NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Every gateway call: the intent is written before the call, the result after it (append-only ledger).
CREATE TABLE gateway_calls (
    idempotency_key text        PRIMARY KEY,
    order_id        uuid        NOT NULL,
    operation       text        NOT NULL,
    amount          bigint      NOT NULL,
    status          text        NOT NULL DEFAULT 'pending',
    reference       text,
    reason          text,
    requested_at    timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz
);
CREATE INDEX gateway_calls_order ON gateway_calls (order_id);
