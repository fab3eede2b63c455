-- Stock per sku and warehouse; available = on_hand - allocated.
CREATE TABLE stock (
    sku       text   NOT NULL,
    warehouse text   NOT NULL,
    on_hand   bigint NOT NULL CHECK (on_hand >= 0),
    allocated bigint NOT NULL DEFAULT 0 CHECK (allocated >= 0 AND allocated <= on_hand),
    PRIMARY KEY (sku, warehouse)
);

-- The lines of each accepted order, per delivery group, as shipping needs them.
CREATE TABLE order_lines (
    order_id       uuid    NOT NULL,
    shop_id        text    NOT NULL,
    delivery_index integer NOT NULL,
    sku            text    NOT NULL,
    quantity       integer NOT NULL,
    carrier        text    NOT NULL,
    PRIMARY KEY (order_id, delivery_index, sku)
);

CREATE TABLE allocations (
    order_id  uuid   NOT NULL,
    sku       text   NOT NULL,
    warehouse text   NOT NULL,
    quantity  bigint NOT NULL,
    PRIMARY KEY (order_id, sku, warehouse)
);

CREATE TABLE shipments (
    shipment_id          uuid        PRIMARY KEY,
    order_id             uuid        NOT NULL,
    delivery_index       integer     NOT NULL,
    status               text        NOT NULL,
    warehouse_request_id text,
    carrier              text        NOT NULL,
    tracking_number      text,
    shipped_at           timestamptz,
    UNIQUE (order_id, delivery_index)
);
