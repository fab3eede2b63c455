"""ordermesh points service: the loyalty ledger."""
