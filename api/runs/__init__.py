"""Runs over GraphQL: the task catalog, runs, their events, and starting and stopping them."""
