-- Who is sending a mail and until when: another replica that finds the row `sending` under a live claim waits
-- instead of sending it too; once the claim has expired (its holder died mid-send) it may send it again.
ALTER TABLE mail_log ADD COLUMN claimed_by text, ADD COLUMN claimed_until timestamptz;
