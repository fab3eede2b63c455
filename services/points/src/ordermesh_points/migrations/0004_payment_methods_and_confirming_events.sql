-- Each order's payment method (from its acceptance or latest edit) tells a card capture from a deferred one; a
-- payment that came before the acceptance and can't be told apart yet waits with the order (e.g. 'captured',
-- 'received:cash_on_delivery') until the acceptance names the method.
ALTER TABLE order_points
    ADD COLUMN payment_method   text,
    ADD COLUMN payments_waiting text[] NOT NULL DEFAULT '{}';

-- The payment events that confirm points, one by one; NULL: the shop's confirm_on holds.
ALTER TABLE shop_settings ADD COLUMN confirm_on_events text[];
