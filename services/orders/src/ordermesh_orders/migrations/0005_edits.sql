-- Edits: what the customer has paid (from payments' events), what shipped per delivery and sku (edits may not
-- reduce it), and every committed edit with its diff and balance.
ALTER TABLE orders ADD COLUMN paid_captured  bigint NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN paid_received  bigint NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN paid_refunded  bigint NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN edit_count     integer NOT NULL DEFAULT 0;

CREATE TABLE order_shipped_units (
    order_id       uuid    NOT NULL REFERENCES orders (order_id),
    shipment_id    uuid    NOT NULL,
    delivery_index integer NOT NULL,
    sku            text    NOT NULL,
    quantity       integer NOT NULL,
    PRIMARY KEY (order_id, shipment_id, sku)
);

CREATE TABLE order_edits (
    order_id    uuid        NOT NULL REFERENCES orders (order_id),
    edit_no     integer     NOT NULL,
    command_id  uuid        NOT NULL UNIQUE,
    edited_at   timestamptz NOT NULL DEFAULT now(),
    edited_by   text        NOT NULL,
    reason      text        NOT NULL,
    changes     jsonb       NOT NULL,
    previous_total bigint   NOT NULL,
    total       bigint      NOT NULL,
    paid        bigint      NOT NULL,
    balance     bigint      NOT NULL,
    adjust_stock boolean    NOT NULL,
    PRIMARY KEY (order_id, edit_no)
);
