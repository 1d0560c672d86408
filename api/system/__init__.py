"""Platform health, version and the end-to-end queue ping."""
