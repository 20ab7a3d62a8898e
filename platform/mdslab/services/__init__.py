"""Service endpoints: health probes for any profile and the supervisor of the embedded profile."""
