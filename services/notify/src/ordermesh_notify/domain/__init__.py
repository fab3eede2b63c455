"""Mail rules: which mail, to whom, with what text. Pure."""
