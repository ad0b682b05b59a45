"""The ground floor every other package stands on: settings, the database engine and schema
evolution, structured logs, tracing and the Temporal client factory.

It imports no package of this project: `core` ← `schemas` ← `messaging` ← the domain (`workflows`,
`services`, `activities`, `bridges`) ← `workers` ← `cloud_factory` (CLI, stack, demo); the import
contract in pyproject.toml (`lint-imports`) keeps the arrows pointing down.
"""
