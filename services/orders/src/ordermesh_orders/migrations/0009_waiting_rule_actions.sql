-- A fired rule's child status that belongs to a later stage waits for the order to reach that stage.
ALTER TABLE order_rule_firings
    ADD COLUMN waiting_status text,
    ADD COLUMN waiting_stage  text,
    ADD COLUMN applied_at     timestamptz;
