-- Append-only ledger: balances are derived from it, never edited in place.
CREATE TABLE ledger (
    entry_id    bigserial   PRIMARY KEY,
    shop_id     text        NOT NULL,
    customer_id text        NOT NULL,
    order_id    uuid,
    kind        text        NOT NULL,
    points      bigint      NOT NULL,
    cause_id    uuid        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (cause_id, kind)
);
CREATE INDEX ledger_customer ON ledger (shop_id, customer_id);

-- Each order's points and where they stand; a confirmation may arrive before the accrual.
CREATE TABLE order_points (
    order_id          uuid    PRIMARY KEY,
    shop_id           text    NOT NULL,
    customer_id       text,
    points            bigint,
    status            text    NOT NULL,
    confirm_requested boolean NOT NULL DEFAULT false,
    confirm_cause_id  uuid
);
