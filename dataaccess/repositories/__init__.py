"""Repositories: one per aggregate, returning frozen dataclasses (see :mod:`dataaccess.models`)."""

from .orders import Orders
from .products import Products
from .users import Users

__all__ = ["Orders", "Products", "Users"]
