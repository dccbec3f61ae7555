"""Print the benchmark figures and their ratios to the baselines, from pytest-benchmark's JSON."""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    data = json.load(open(path))
    stats = {b["name"]: b["stats"] for b in data["benchmarks"]}
    print(
        f"machine: {data['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
        f"{data['machine_info'].get('cpu', {}).get('count', '?')} cores"
    )
    for name, s in stats.items():
        print(f"{name:45s} min {s['min'] * 1e3:9.3f} ms   median {s['median'] * 1e3:9.3f} ms")
    for b in data["benchmarks"]:
        if b.get("extra_info"):
            print(f"  {b['name']}: {json.dumps(b['extra_info'])}")

    def ratio(a: str, b: str, label: str) -> None:
        if a in stats and b in stats:
            print(
                f"{label}: {stats[a]['min'] / stats[b]['min']:.2f}x (min), "
                f"{stats[a]['median'] / stats[b]['median']:.2f}x (median)"
            )

    ratio("test_isolated_full_result", "test_baseline_copy_pass", "1M isolated, full result / copy pass")
    ratio("test_isolated_price_and_tier", "test_baseline_copy_pass", "1M isolated, price+tier / copy pass")
    ratio("test_side_as_strings", "test_side_as_floats", "1M, side as strings / as floats")
    ratio("test_side_parse_only", "test_side_baseline_memory_pass", "1M, side strings parsed / copy pass")
    if "test_python_scalar_loop_20k" in stats and "test_vectorised_20k" in stats:
        py = stats["test_python_scalar_loop_20k"]["median"] / 20_000
        vec = stats["test_vectorised_20k"]["median"] / 20_000
        print(f"per position: python loop {py * 1e9:.0f} ns, vectorised {vec * 1e9:.1f} ns ({py / vec:.0f}x)")


if __name__ == "__main__":
    main(sys.argv[1])
