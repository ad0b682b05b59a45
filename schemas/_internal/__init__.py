"""Machinery behind the public `schemas` API. Nothing here is imported by services directly."""
