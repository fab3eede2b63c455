-- What staff and rules add to an order: the stage it was held at, a child status, labels, memo, carrier, ship date.
ALTER TABLE orders
    ADD COLUMN held_from    text,
    ADD COLUMN child_status text,
    ADD COLUMN labels       text[] NOT NULL DEFAULT '{}',
    ADD COLUMN memo         text   NOT NULL DEFAULT '',
    ADD COLUMN carrier      text,
    ADD COLUMN ship_date    date;
CREATE INDEX orders_shop_created ON orders (shop_id, created_at);

-- Tasks for staff; open blocking tasks keep an order in review.
CREATE TABLE order_tasks (
    task_id    bigserial   PRIMARY KEY,
    order_id   uuid        NOT NULL REFERENCES orders (order_id),
    kind       text        NOT NULL,
    note       text        NOT NULL,
    blocking   boolean     NOT NULL,
    status     text        NOT NULL DEFAULT 'open',
    opened_at  timestamptz NOT NULL DEFAULT now(),
    opened_by  text        NOT NULL,
    closed_at  timestamptz,
    closed_by  text,
    close_note text
);
CREATE INDEX order_tasks_open ON order_tasks (order_id) WHERE status = 'open';

-- Customers the shop watches: their orders stop in review.
CREATE TABLE watch_list (
    shop_id     text        NOT NULL,
    customer_id text        NOT NULL,
    reason      text        NOT NULL,
    added_by    text        NOT NULL,
    added_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, customer_id)
);
