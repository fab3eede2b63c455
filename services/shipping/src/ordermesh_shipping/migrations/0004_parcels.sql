-- A shipment (one delivery group) may leave in several parcels, each with its own tracking number and units.
CREATE TABLE parcels (
    shipment_id     uuid        NOT NULL REFERENCES shipments (shipment_id),
    tracking_number text        NOT NULL,
    order_id        uuid        NOT NULL,
    carrier         text        NOT NULL,
    shipped_at      timestamptz NOT NULL,
    PRIMARY KEY (shipment_id, tracking_number)
);
CREATE UNIQUE INDEX parcels_tracking_number ON parcels (tracking_number);
CREATE INDEX parcels_order ON parcels (order_id);

CREATE TABLE parcel_lines (
    shipment_id     uuid    NOT NULL,
    tracking_number text    NOT NULL,
    sku             text    NOT NULL,
    quantity        integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (shipment_id, tracking_number, sku),
    FOREIGN KEY (shipment_id, tracking_number) REFERENCES parcels (shipment_id, tracking_number)
);

-- Shipments that left before parcels were kept left in one parcel carrying their delivery group's lines.
INSERT INTO parcels (shipment_id, tracking_number, order_id, carrier, shipped_at)
SELECT shipment_id, tracking_number, order_id, carrier, coalesce(shipped_at, now())
FROM shipments WHERE tracking_number IS NOT NULL;

INSERT INTO parcel_lines (shipment_id, tracking_number, sku, quantity)
SELECT s.shipment_id, s.tracking_number, l.sku, l.quantity
FROM shipments s JOIN order_lines l ON l.order_id = s.order_id AND l.delivery_index = s.delivery_index
WHERE s.tracking_number IS NOT NULL AND l.quantity > 0;
