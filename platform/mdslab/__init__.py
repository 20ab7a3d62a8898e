"""mdslab: a single-host, production-shaped Modern Data Stack lab."""

__version__ = "0.1.0"
