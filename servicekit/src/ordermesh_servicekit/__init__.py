"""The runtime every ordermesh service shares; it holds no business rules."""
