"""Payment rules: what to ask of the gateway for an order, and what its answer means. Pure."""
