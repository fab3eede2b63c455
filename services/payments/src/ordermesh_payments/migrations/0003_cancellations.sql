-- A cancelled order is never captured or charged afterwards, whatever was chosen for its payment.
ALTER TABLE payments ADD COLUMN cancelled_at timestamptz;

-- Each order's cancellation as payments saw it: the choice, and what became of the payment.
CREATE TABLE cancellations (
    order_id       uuid        PRIMARY KEY,
    shop_id        text        NOT NULL,
    cancel_payment boolean     NOT NULL,
    reason         text        NOT NULL,
    cancelled_by   text        NOT NULL,
    outcome        text,
    amount         bigint,
    refund_owed    bigint      NOT NULL DEFAULT 0,
    failure_reason text,
    cancelled_at   timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz
);
