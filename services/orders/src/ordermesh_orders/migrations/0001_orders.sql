CREATE TABLE orders (
    order_id          uuid        PRIMARY KEY,
    shop_id           text        NOT NULL,
    channel           text        NOT NULL,
    external_order_no text        NOT NULL,
    stage             text        NOT NULL,
    mode              text        NOT NULL DEFAULT 'auto',
    payment_method    text        NOT NULL,
    currency          text        NOT NULL,
    total             bigint      NOT NULL,
    flags             jsonb       NOT NULL,
    snapshot          jsonb       NOT NULL,
    correlation_id    uuid        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (shop_id, channel, external_order_no)
);
CREATE INDEX orders_stage ON orders (stage);

CREATE TABLE order_history (
    id         bigserial   PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (order_id),
    at         timestamptz NOT NULL DEFAULT now(),
    actor      text        NOT NULL,
    cause_id   uuid,
    what       text        NOT NULL,
    details    jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX order_history_order ON order_history (order_id, id);
