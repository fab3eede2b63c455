-- The card gateway each payment started on (its capture, void, refund and re-authorization go to the same one);
-- NULL for payments that never touch a card gateway and for card payments made before this column (the sandbox).
ALTER TABLE payments ADD COLUMN gateway text;

-- Per shop: which gateway takes new card payments, and what the periodic checks do on their own.
ALTER TABLE payment_settings
    ADD COLUMN card_gateway           text    NOT NULL DEFAULT 'sandbox',
    ADD COLUMN reauthorize_expiring   boolean NOT NULL DEFAULT false,
    ADD COLUMN cancel_overdue_prepaid boolean NOT NULL DEFAULT false;
