-- A shop's automatic processing rules (validated JSON), and which rule fired for which order.
CREATE TABLE shop_rules (
    shop_id    text        PRIMARY KEY,
    rule_set   jsonb       NOT NULL,
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE order_rule_firings (
    order_id uuid        NOT NULL REFERENCES orders (order_id),
    rule_id  text        NOT NULL,
    fired_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, rule_id)
);

-- A shop's two-level statuses: one group per built-in stage (renamed, reordered) with child statuses.
CREATE TABLE shop_statuses (
    shop_id    text        PRIMARY KEY,
    groups     jsonb       NOT NULL,
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE orders ADD COLUMN mail_texts jsonb NOT NULL DEFAULT '{}'::jsonb;
