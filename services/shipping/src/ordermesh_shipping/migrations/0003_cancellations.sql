-- Orders cancelled by staff: shipping never allocates or requests anything for them again.
CREATE TABLE cancelled_orders (
    order_id      uuid        PRIMARY KEY,
    shop_id       text        NOT NULL,
    restore_stock boolean     NOT NULL,
    cancelled_at  timestamptz NOT NULL,
    event_id      uuid        NOT NULL
);

-- Units given back to stock when the order was cancelled (quantity keeps what is still set aside, shipped included).
ALTER TABLE allocations ADD COLUMN released bigint NOT NULL DEFAULT 0;

-- Cancelling a shipment at the warehouse: attempts and the last failure (staff see why it is not cancelled).
ALTER TABLE shipments ADD COLUMN cancel_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE shipments ADD COLUMN cancel_error text;
