-- Staff accounts of the console, their sessions, and every command the console sent with its reply.
CREATE TABLE staff_accounts (
    username      text        PRIMARY KEY,
    display_name  text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('viewer', 'operator', 'editor', 'admin')),
    password_hash text        NOT NULL,
    language      text        NOT NULL DEFAULT 'ja' CHECK (language IN ('ja', 'en')),
    active        boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text        NOT NULL,
    last_login_at timestamptz
);

-- Only a hash of the session token is kept, so a read of this table can't be used to log in.
CREATE TABLE staff_sessions (
    token_hash  bytea       PRIMARY KEY,
    username    text        NOT NULL REFERENCES staff_accounts (username) ON DELETE CASCADE,
    csrf_token  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX staff_sessions_expiry ON staff_sessions (expires_at);

CREATE TABLE sent_commands (
    command_id   uuid        PRIMARY KEY,
    batch_id     uuid,
    issued_by    text        NOT NULL,
    command_type text        NOT NULL,
    topic        text        NOT NULL,
    shop_id      text        NOT NULL,
    order_ids    uuid[]      NOT NULL DEFAULT '{}',
    sent_at      timestamptz NOT NULL DEFAULT now(),
    reply        jsonb,
    replied_at   timestamptz
);
CREATE INDEX sent_commands_orders ON sent_commands USING gin (order_ids);
CREATE INDEX sent_commands_batch ON sent_commands (batch_id) WHERE batch_id IS NOT NULL;
