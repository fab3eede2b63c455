-- A shipment (one delivery group) may leave in several parcels: what shipped is kept per parcel (tracking number).
ALTER TABLE order_shipped_units ADD COLUMN tracking_number text NOT NULL DEFAULT '';
ALTER TABLE order_shipped_units DROP CONSTRAINT order_shipped_units_pkey;
ALTER TABLE order_shipped_units ADD PRIMARY KEY (order_id, shipment_id, tracking_number, sku);
