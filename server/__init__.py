"""The HTTP service and its Redis job queue (built on the verifier pool and the search)."""
