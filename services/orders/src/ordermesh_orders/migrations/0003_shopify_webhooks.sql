-- Shopify webhook ids already published: a repeat (Shopify retries) is acknowledged and dropped.
CREATE TABLE shopify_webhooks (
    webhook_id  text        PRIMARY KEY,
    shop_domain text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
