-- Each customer's balances are kept on the account row, moved by every ledger entry as it is booked: reading them is
-- one row however long the customer's history (adding up the whole ledger on every message grew with it).
ALTER TABLE customer_accounts
    ADD COLUMN available   bigint NOT NULL DEFAULT 0,
    ADD COLUMN provisional bigint NOT NULL DEFAULT 0,
    ADD COLUMN reserved    bigint NOT NULL DEFAULT 0,
    ADD COLUMN used        bigint NOT NULL DEFAULT 0,
    ADD COLUMN lifetime    bigint NOT NULL DEFAULT 0,
    ADD COLUMN debt        bigint NOT NULL DEFAULT 0;

-- How one entry moves each balance (the sums the balances were added up with before; domain/ledger.py EFFECTS).
CREATE FUNCTION ledger_entry_moves(
    kind text, points bigint,
    OUT available bigint, OUT provisional bigint, OUT reserved bigint, OUT used bigint, OUT lifetime bigint, OUT debt bigint
) LANGUAGE sql IMMUTABLE AS $$
SELECT
  CASE kind WHEN 'confirmed' THEN points WHEN 'granted' THEN points WHEN 'released' THEN points
            WHEN 'reserved' THEN -points WHEN 'deducted' THEN -points WHEN 'expired' THEN -points
            WHEN 'debt_settled' THEN -points ELSE 0 END,
  CASE kind WHEN 'accrued' THEN points WHEN 'confirmed' THEN -points WHEN 'reversed' THEN -points ELSE 0 END,
  CASE kind WHEN 'reserved' THEN points WHEN 'released' THEN -points WHEN 'committed' THEN -points ELSE 0 END,
  CASE kind WHEN 'committed' THEN points ELSE 0 END,
  CASE kind WHEN 'confirmed' THEN points WHEN 'granted' THEN points ELSE 0 END,
  CASE kind WHEN 'debt' THEN points WHEN 'debt_settled' THEN -points ELSE 0 END
$$;

CREATE FUNCTION ledger_moves_balances() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_accounts AS a (shop_id, customer_id, available, provisional, reserved, used, lifetime, debt)
    SELECT e.shop_id, e.customer_id, sum(m.available), sum(m.provisional), sum(m.reserved), sum(m.used), sum(m.lifetime), sum(m.debt)
    FROM booked AS e, LATERAL ledger_entry_moves(e.kind, e.points) AS m
    GROUP BY e.shop_id, e.customer_id
    ON CONFLICT (shop_id, customer_id) DO UPDATE SET
        available = a.available + EXCLUDED.available, provisional = a.provisional + EXCLUDED.provisional,
        reserved = a.reserved + EXCLUDED.reserved, used = a.used + EXCLUDED.used,
        lifetime = a.lifetime + EXCLUDED.lifetime, debt = a.debt + EXCLUDED.debt;
    RETURN NULL;
END;
$$;

-- Created before the balances are filled in: it locks the ledger against new entries until this migration commits.
CREATE TRIGGER ledger_entries_booked AFTER INSERT ON ledger REFERENCING NEW TABLE AS booked
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_moves_balances();

-- The kept balances hold only while entries are never changed or removed (they never were).
CREATE FUNCTION ledger_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are never changed or removed (customer balances are kept from them)';
END;
$$;
CREATE TRIGGER ledger_append_only BEFORE UPDATE OR DELETE ON ledger
    FOR EACH ROW EXECUTE FUNCTION ledger_is_append_only();

INSERT INTO customer_accounts AS a (shop_id, customer_id, available, provisional, reserved, used, lifetime, debt)
SELECT e.shop_id, e.customer_id, sum(m.available), sum(m.provisional), sum(m.reserved), sum(m.used), sum(m.lifetime), sum(m.debt)
FROM ledger AS e, LATERAL ledger_entry_moves(e.kind, e.points) AS m
GROUP BY e.shop_id, e.customer_id
ON CONFLICT (shop_id, customer_id) DO UPDATE SET
    available = EXCLUDED.available, provisional = EXCLUDED.provisional, reserved = EXCLUDED.reserved,
    used = EXCLUDED.used, lifetime = EXCLUDED.lifetime, debt = EXCLUDED.debt;
