-- What order edits left on the payment: the latest edit seen, money the customer still owes or is owed back,
-- the card token a re-authorization needs (a gateway token, never card data) and the customer id a credit check needs.
ALTER TABLE payments
    ADD COLUMN edit_no            integer NOT NULL DEFAULT 0,
    ADD COLUMN edited_total       bigint,
    ADD COLUMN balance_due        bigint  NOT NULL DEFAULT 0,
    ADD COLUMN refund_owed        bigint  NOT NULL DEFAULT 0,
    ADD COLUMN refunded_for_edits bigint  NOT NULL DEFAULT 0,
    ADD COLUMN card_token         text,
    ADD COLUMN customer_id        text,
    ADD COLUMN amount_change_failure text,
    ADD COLUMN credit_check_id    text;

-- Each answer to an edit (or a staff retry), planned before any gateway call and settled after it.
CREATE TABLE amount_changes (
    cause_id          uuid        PRIMARY KEY,
    order_id          uuid        NOT NULL,
    edit_no           integer     NOT NULL,
    action            text        NOT NULL,
    outcome           text,
    previous_amount   bigint      NOT NULL,
    amount            bigint      NOT NULL,
    refunded          bigint      NOT NULL DEFAULT 0,
    balance_due       bigint      NOT NULL DEFAULT 0,
    refund_owed       bigint      NOT NULL DEFAULT 0,
    replaces          text,
    new_status        text,
    request           bigint,
    status            text        NOT NULL DEFAULT 'planned',
    failure_reason    text,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    settled_at        timestamptz
);
CREATE INDEX amount_changes_order ON amount_changes (order_id);

-- Deferred payment: each credit check asked of the provider, and its decision (pending until decided).
CREATE TABLE credit_checks (
    check_id     text        PRIMARY KEY,
    order_id     uuid        NOT NULL,
    shop_id      text        NOT NULL,
    amount       bigint      NOT NULL,
    currency     text        NOT NULL,
    status       text        NOT NULL,
    reason       text,
    cause_id     uuid        NOT NULL,
    correlation_id uuid      NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    decided_at   timestamptz,
    polled_at    timestamptz
);
CREATE INDEX credit_checks_pending ON credit_checks (requested_at) WHERE status = 'pending';
CREATE INDEX credit_checks_order ON credit_checks (order_id);
