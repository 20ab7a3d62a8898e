"""Data contracts, simulator, ingestion, pipelines and deep dives built on the platform."""
