-- Text the shop's rules insert into this order's mails, by mail kind (from OrderAccepted.mail_texts).
ALTER TABLE contacts ADD COLUMN mail_texts jsonb NOT NULL DEFAULT '{}'::jsonb;
