-- The order's correlation id and the traceparent of the span that asked for the shipment: the warehouse's callbacks
-- continue the order's trace and correlation instead of starting new ones.
ALTER TABLE shipments ADD COLUMN correlation_id uuid, ADD COLUMN traceparent text;
