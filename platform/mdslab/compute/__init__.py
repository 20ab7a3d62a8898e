"""Compute: Spark on Ray (RayDP) and the Delta <-> Spark exchange through Ray Data."""
