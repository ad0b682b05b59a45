"""Contract hot-path benchmark: µs/event for encode+sign and verify+decode(+upcast), against plain
`json.dumps`/`json.loads` of the same dict measured in the same run.

    .venv/bin/python bench/bench_contract.py [--events N] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import schemas
from schemas import Keyring, SigningMode, decode, encode, enforce_signature
from schemas.examples import example_event


def _per_event_us(fn: Callable[[], object], events: int, rounds: int) -> float:
    """Median over `rounds` of the mean µs per call across `events` calls."""
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(events):
            fn()
        samples.append((time.perf_counter() - start) / events * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    ring = Keyring.parse("order/bench:benchmark-secret-key").as_signer("order")
    latest = example_event("order.created", "v3")
    old = example_event("order.created", "v1")
    value, old_value = encode(latest), encode(old)
    headers, old_headers = ring.sign(value), ring.sign(old_value)
    as_dict = json.loads(value)
    plain = json.dumps(as_dict).encode()

    def encode_sign() -> object:
        raw = encode(latest)
        return ring.sign(raw)

    def verify_decode(raw: bytes = value, hdrs: list = headers) -> object:
        enforce_signature(ring.verify(raw, hdrs), SigningMode.PRODUCTION)
        return decode(raw)

    def verify_decode_upcast() -> object:
        return verify_decode(old_value, old_headers)

    measures = {
        "json.dumps (plain dict)": lambda: json.dumps(as_dict).encode(),
        "json.loads (plain dict)": lambda: json.loads(plain),
        "encode + sign": encode_sign,
        "encode only": lambda: encode(latest),
        "verify + decode (v3, latest)": verify_decode,
        "verify + decode + upcast (v1 → v3)": verify_decode_upcast,
        "decode only (v3)": lambda: decode(value),
    }
    decode(value)  # build the validator outside the timed region
    results = {name: _per_event_us(fn, args.events, args.rounds) for name, fn in measures.items()}

    print(f"event: order.created, {len(value)} bytes; {args.events} events x {args.rounds} rounds (median)")
    for name, us in results.items():
        print(f"  {name:<38} {us:8.2f} µs/event")
    dumps, loads = results["json.dumps (plain dict)"], results["json.loads (plain dict)"]
    print("ratios to plain json in this run:")
    print(f"  encode + sign / json.dumps                     {results['encode + sign'] / dumps:5.2f}x")
    verify_decode_us = results["verify + decode (v3, latest)"]
    print(f"  verify + decode / json.loads                   {verify_decode_us / loads:5.2f}x")
    print(
        f"  verify + decode + upcast / json.loads          "
        f"{results['verify + decode + upcast (v1 → v3)'] / loads:5.2f}x"
    )
    print(f"  decode only / json.loads                       {results['decode only (v3)'] / loads:5.2f}x")
    print(f"schemas {len(schemas.catalog)} event types")


if __name__ == "__main__":
    main()
