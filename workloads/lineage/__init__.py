"""Governance: what each table and column is derived from (OpenLineage's model), from one definition."""
