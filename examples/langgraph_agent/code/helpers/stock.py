"""A tiny in-memory stock table standing in for the warehouse database."""

STOCK = {"stand-in": 42, "SKU-1": 7}
