"""Shop: the order, payment, search and reporting API behind the web shop and the mobile apps."""

__version__ = "2.14.1"
