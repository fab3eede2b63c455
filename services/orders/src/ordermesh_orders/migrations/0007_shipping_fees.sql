-- A shop's shipping fee table (SetShippingFees): what a merge charges when staff give no fee.
CREATE TABLE shop_shipping_fees (
    shop_id    text        PRIMARY KEY,
    fee_table  jsonb       NOT NULL,
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
