-- The billing address the shop sent with the order (personal data: shown to staff, never logged). Orders taken in
-- before this column existed have none.
ALTER TABLE orders ADD COLUMN billing_address jsonb;
