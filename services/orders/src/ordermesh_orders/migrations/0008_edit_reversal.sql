-- The delivery groups as they were before each edit, so an edit the warehouse could not follow can be reversed.
ALTER TABLE order_edits ADD COLUMN previous_deliveries jsonb;
