"""producers: what runs inside the application: emission, routing, fallback, simulation."""

from producers.emitter import Emitter, EmitterStats
from producers.fallback import Outcome, Request, critical_when, observe, serve, serve_async
from producers.router import Router

__all__ = [
    "Emitter",
    "EmitterStats",
    "Outcome",
    "Request",
    "Router",
    "critical_when",
    "observe",
    "serve",
    "serve_async",
]
