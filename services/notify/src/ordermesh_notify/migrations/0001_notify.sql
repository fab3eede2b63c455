-- Who to mail about an order (personal data: kept here, never logged).
CREATE TABLE contacts (
    order_id          uuid PRIMARY KEY,
    shop_id           text NOT NULL,
    external_order_no text NOT NULL,
    email             text,
    name              text NOT NULL,
    device            text NOT NULL,
    summary           jsonb NOT NULL
);

-- One row per (order, mail kind, cause): a redelivered cause never sends again.
CREATE TABLE mail_log (
    mail_id     uuid        PRIMARY KEY,
    order_id    uuid        NOT NULL,
    kind        text        NOT NULL,
    cause_id    uuid        NOT NULL,
    status      text        NOT NULL,
    recipient   text,
    subject     text,
    body        text,
    attempts    integer     NOT NULL DEFAULT 0,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    sent_at     timestamptz,
    UNIQUE (order_id, kind, cause_id)
);
