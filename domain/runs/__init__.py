"""Runs: the task catalog, runs and their attempts, events, execution and recovery."""
