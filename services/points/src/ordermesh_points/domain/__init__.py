"""Points rules. Pure."""
