"""The agent's tools."""

from langchain_core.tools import tool

from .stock import STOCK


@tool
def lookup_stock(sku: str) -> str:
    """Units in stock for a SKU."""
    return str(STOCK.get(sku, 0))


TOOLS = [lookup_stock]
