"""Contract v1: the event models, the codec and the topic names every part shares."""

from schemas.codec import DecodeError, decode, encode
from schemas.events import (
    Alert,
    AlertAction,
    AlertWindow,
    ErrorInfo,
    Feedback,
    Result,
    RolloutEvent,
)
from schemas.internal import DeadLetter, Partial
from schemas.topics import Topic, Topics

__all__ = [
    "Alert",
    "AlertAction",
    "AlertWindow",
    "DeadLetter",
    "DecodeError",
    "ErrorInfo",
    "Feedback",
    "Partial",
    "Result",
    "RolloutEvent",
    "Topic",
    "Topics",
    "decode",
    "encode",
]
