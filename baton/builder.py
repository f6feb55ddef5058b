"""``baton.builder.GraphBuilder``, as users import it; the builder lives in :mod:`baton.graphs.builder`."""

from baton.graphs.builder import GraphBuilder

__all__ = ["GraphBuilder"]
