"""The local stack: real Apache Kafka, Temporal and PostgreSQL on 127.0.0.1.

Public surface: `Stack` (up / status / down), `StackError` (one-line failures naming a log),
`ComponentState` and `ComponentStatus` for reports.
"""

from cloud_factory.stack._component import ComponentState, ComponentStatus
from cloud_factory.stack._process import StackError
from cloud_factory.stack.manager import Stack

__all__ = ["ComponentState", "ComponentStatus", "Stack", "StackError"]
