-- The account customers pay bank transfers to, shown in the payment instructions.
ALTER TABLE payment_settings ADD COLUMN bank_account text;
