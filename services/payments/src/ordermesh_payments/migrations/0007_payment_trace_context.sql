-- The order's correlation id and the traceparent of the span that created the payment: a provider's callback about
-- it continues the order's trace and correlation instead of starting new ones.
ALTER TABLE payments ADD COLUMN correlation_id uuid, ADD COLUMN traceparent text;
