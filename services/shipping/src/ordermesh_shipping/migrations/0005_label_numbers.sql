-- B2 Cloud's お客様管理番号 holds at most 20 half-width alphanumerics: each shipment gets a short number for it
-- (a UUID's 36 characters do not fit).
CREATE SEQUENCE shipment_label_numbers;
ALTER TABLE shipments ADD COLUMN label_no bigint NOT NULL DEFAULT nextval('shipment_label_numbers');
ALTER SEQUENCE shipment_label_numbers OWNED BY shipments.label_no;
CREATE UNIQUE INDEX shipments_label_no ON shipments (label_no);
