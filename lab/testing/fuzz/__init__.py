"""Fuzz campaigns against racklab's services: generated hostile inputs on loopback,
checked between batches with the real clients (see core.py; run with
`python -m lab.testing.fuzz`)."""
