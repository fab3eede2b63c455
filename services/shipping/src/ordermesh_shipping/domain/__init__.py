"""Shipping rules: allocation and shipment planning. Pure."""
