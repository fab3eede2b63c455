"""Payment rules: which flow an order takes, what a gateway may be asked, what received money means. Pure."""
