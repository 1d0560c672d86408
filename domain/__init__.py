"""Taskyard's domain: plain models, rules, services and the ports they need."""
