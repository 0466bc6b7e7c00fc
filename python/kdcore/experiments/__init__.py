"""The papers' experiments and the studies built on the library (tables, figures, report sections)."""
