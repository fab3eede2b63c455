-- Per-order text inserted into every later mail (staff command now, rules later).
ALTER TABLE contacts ADD COLUMN inserted_text text;

-- The HTML part, the variables it was rendered from (for bulk and preview), which template, and body retention.
ALTER TABLE mail_log
    ADD COLUMN html text,
    ADD COLUMN variables jsonb,
    ADD COLUMN template text,
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN body_purged_at timestamptz;
CREATE INDEX mail_log_by_order ON mail_log (order_id, created_at);
CREATE INDEX mail_log_by_age ON mail_log (created_at) WHERE body_purged_at IS NULL;

-- A shop's mail settings; a shop without a row uses the defaults.
CREATE TABLE shop_mail_settings (
    shop_id        text        PRIMARY KEY,
    language       text        NOT NULL,
    signature      text        NOT NULL,
    encoding       text        NOT NULL,
    disabled_kinds text[]      NOT NULL,
    updated_by     text        NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A shop's own templates per mail kind and device ('any' serves both); checked when saved.
CREATE TABLE mail_templates (
    shop_id    text        NOT NULL,
    kind       text        NOT NULL,
    device     text        NOT NULL,
    subject    text        NOT NULL,
    text_body  text        NOT NULL,
    html_body  text,
    updated_by text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shop_id, kind, device)
);
