"""Local services for development, tests and CI: a Tansu broker and a ClickHouse server.

``phasegate stack up|down|status`` manages them as background processes with state under
``settings.state_dir / "stack"``; ``ensure_topics`` creates the contract's topics.
"""

from phasegate.stack.errors import MissingDependency, ServiceUnavailable, StackError, StartFailed
from phasegate.stack.process import ManagedProcess, State, Status, free_port, free_ports, port_open
from phasegate.stack.topics import ensure_topics

__all__ = [
    "ManagedProcess",
    "MissingDependency",
    "ServiceUnavailable",
    "StackError",
    "StartFailed",
    "State",
    "Status",
    "ensure_topics",
    "free_port",
    "free_ports",
    "port_open",
]
