-- Goods returned after shipping: each return with its lines, what they were worth and whether they were restocked.
CREATE TABLE order_returns (
    order_id    uuid        NOT NULL REFERENCES orders (order_id),
    return_no   integer     NOT NULL,
    edit_no     integer     NOT NULL,
    command_id  uuid        NOT NULL UNIQUE,
    returned_at timestamptz NOT NULL DEFAULT now(),
    returned_by text        NOT NULL,
    reason      text        NOT NULL,
    lines       jsonb       NOT NULL,
    amount      bigint      NOT NULL,
    restock     boolean     NOT NULL,
    previous_total bigint   NOT NULL,
    total       bigint      NOT NULL,
    PRIMARY KEY (order_id, return_no)
);
