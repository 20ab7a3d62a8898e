"""Streaming ingestion: the event types on the wire, the producer behind the API, the ingest routes,
the stream consumer that writes bronze exactly once, and the simulator's senders."""
