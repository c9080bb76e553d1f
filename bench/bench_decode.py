"""Strict decoding of contract-v1 results and feedback: CPU per message of each decoder.

The same simulated messages (``producers.simulator``, as producers encode them) through:
pydantic one call per message (``schemas.codec.decode``), pydantic per batch
(``decode_many``), the msgspec decoder to the same models (``schemas.fastcodec``, one call
per message and per batch), and msgspec's typed Struct alone (no model: the floor). The
last rows add stage 1's aggregation (``WindowStats.update``) to the model and to the
Struct: what the worker pays end to end for each form. Thread CPU time, median of
``rounds``, in batches of ``batch`` messages as fetched; ratios to the first row.

    python -m bench.bench_decode [--messages 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import msgspec

from bench.common import median, print_table
from producers.simulator import generate
from schemas import Feedback, Result, encode
from schemas.codec import decode, decode_many
from schemas.fastcodec import STRUCTS, fast_decode, fast_decode_many
from streams.aggregate import WindowStats


def messages(n: int) -> dict[type, list[bytes]]:
    """``n`` results and the feedback that came with them, encoded."""
    out: dict[type, list[bytes]] = {Result: [], Feedback: []}
    for event in generate("healthy", n, seed=7):
        out[type(event)].append(encode(event))
    return out


def per_message(run: Callable[[list[bytes]], Any], values: list[bytes], batch: int) -> float:
    """Thread CPU microseconds per message of ``run`` over ``values`` in batches."""
    batches = [values[i : i + batch] for i in range(0, len(values), batch)]
    start = time.thread_time()
    for b in batches:
        run(b)
    return (time.thread_time() - start) / len(values) * 1e6


def aggregated(decoded: list[Any]) -> None:
    stats = WindowStats()
    for event in decoded:
        stats.update(event)


def decoders(model: type) -> dict[str, Callable[[list[bytes]], Any]]:
    struct = msgspec.json.Decoder(STRUCTS[model]).decode
    steps = {
        "pydantic, one call per message": lambda vs: [decode(v, model) for v in vs],
        "pydantic decode_many, per batch": lambda vs: decode_many(vs, model),
        "msgspec to the model, per message": lambda vs: [fast_decode(v, model) for v in vs],
        "msgspec to the model, fast_decode_many": lambda vs: fast_decode_many(vs, model),
        "msgspec Struct alone (no model, ts unparsed)": lambda vs: [struct(v) for v in vs],
    }
    if model is Result:
        steps["+ aggregate: pydantic decode_many"] = lambda vs: aggregated(decode_many(vs, model))
        steps["+ aggregate: model (fast_decode_many)"] = lambda vs: aggregated(
            fast_decode_many(vs, model)
        )
        steps["+ aggregate: Struct alone"] = lambda vs: aggregated([struct(v) for v in vs])
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="results (default 20000)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=500, help="messages per fetched batch")
    args = parser.parse_args()
    encoded = messages(args.messages)
    for model in STRUCTS:
        values = encoded[model]
        steps = decoders(model)
        times: dict[str, list[float]] = {name: [] for name in steps}
        for _ in range(args.rounds):  # interleaved: a busy moment hits every row alike
            for name, run in steps.items():
                times[name].append(per_message(run, values, args.batch))
        base = median(times["pydantic, one call per message"])
        rows = [[name, f"{median(t):.2f}", f"{base / median(t):.2f}x"] for name, t in times.items()]
        title = f"{model.__name__}: {len(values):,} messages, median of {args.rounds} rounds"
        print_table(title, ["decoder", "CPU us/message", "vs pydantic"], rows)


if __name__ == "__main__":
    main()
