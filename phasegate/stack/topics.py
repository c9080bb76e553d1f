"""Create the contract's topics with their partition counts (before anything uses them).

The local broker auto-creates an unknown topic with 4 partitions, which would break the
one-partition ordered logs (``rollout``, ``alerts``): run ``ensure_topics`` first.
"""

from __future__ import annotations

from phasegate.stack.broker import admin_client
from phasegate.stack.errors import StackError
from schemas.settings import Settings

TOPIC_ALREADY_EXISTS = 36


def partition_counts(settings: Settings) -> dict[str, int]:
    """Partition count of every existing topic under ``settings.topic_prefix``."""
    with admin_client(settings.bootstrap_servers, options=settings.kafka_options()) as admin:
        # describe all topics: naming unknown ones could auto-create them on some brokers
        described = admin.describe_topics()
    return {
        t["name"]: len(t["partitions"])
        for t in described
        if t["name"].startswith(settings.topic_prefix)
    }


def ensure_topics(settings: Settings) -> list[str]:
    """Create every missing topic of ``settings.topics``; return the names created."""
    wanted = settings.topics.all()
    with admin_client(settings.bootstrap_servers, options=settings.kafka_options()) as admin:
        existing = set(admin.list_topics())
        missing = {name: n for name, n in wanted.items() if name not in existing}
        if not missing:
            return []
        spec = {n: {"num_partitions": p, "replication_factor": -1} for n, p in missing.items()}
        response = admin.create_topics(spec, raise_errors=False)
    created, errors = [], []
    for topic in response["topics"]:
        if topic["error_code"] == 0:
            created.append(topic["name"])
        elif topic["error_code"] != TOPIC_ALREADY_EXISTS:  # created meanwhile: fine
            errors.append(f"{topic['name']}: {topic['error_message'] or topic['error_code']}")
    if errors:
        raise StackError("could not create topics: " + "; ".join(errors))
    return sorted(created)


def mismatches(settings: Settings) -> dict[str, tuple[int, int]]:
    """Topics whose partition count differs from the contract: name -> (have, want)."""
    have = partition_counts(settings)
    return {
        name: (have[name], want)
        for name, want in settings.topics.all().items()
        if name in have and have[name] != want
    }
