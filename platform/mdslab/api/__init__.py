"""The HTTP API (``mdslab serve``): one FastAPI app composed from the workloads' routers."""
