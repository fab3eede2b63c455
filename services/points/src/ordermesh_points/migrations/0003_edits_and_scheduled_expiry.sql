-- What each order's points were computed with at acceptance (an edit earns by the same rules), the last edit
-- honoured, and an edit that arrived before the acceptance (honoured once the acceptance comes).
ALTER TABLE order_points
    ADD COLUMN ordered_on      date,
    ADD COLUMN member_since    date,
    ADD COLUMN rate_percent    integer,
    ADD COLUMN campaigns       jsonb,
    ADD COLUMN edit_no         integer NOT NULL DEFAULT 0,
    ADD COLUMN pending_edit_no integer NOT NULL DEFAULT 0,
    ADD COLUMN pending_edit    jsonb;

-- One scheduled expiry per shop and day: the key makes a second run (another replica, a restart) a no-op.
CREATE TABLE expiry_runs (
    shop_id    text        NOT NULL,
    as_of      date        NOT NULL,
    run_id     uuid        NOT NULL,
    ran_at     timestamptz NOT NULL DEFAULT now(),
    customers  integer     NOT NULL DEFAULT 0,
    points     bigint      NOT NULL DEFAULT 0,
    PRIMARY KEY (shop_id, as_of)
);
