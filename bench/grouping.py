"""Grouping quality of `normalize_message` against drain3's defaults on labelled Loghub samples.

Run from the project root:

    .venv/bin/python bench/grouping.py            # every dataset in bench/data/
    .venv/bin/python bench/grouping.py HDFS Linux # some of them
    .venv/bin/python bench/grouping.py --show-errors Linux   # print the templates that split or merge

Each `bench/data/<Name>_2k.csv` holds `Content,EventId` rows: the log message and the
ground-truth event it belongs to. Quench groups lines whose `normalize_message` templates
are identical; drain3 groups lines by the cluster that `TemplateMiner()` (no config file:
its defaults, no masking) puts them in.

Metrics per dataset, and their mean over datasets:

- group accuracy (GA), the Loghub measure (Zhu et al., "Tools and Benchmarks for Automated
  Log Parsing", ICSE-SEIP 2019): the fraction of lines whose predicted group holds exactly
  the lines of their true event, no more and no fewer;
- pairwise precision, recall and F1 over pairs of lines put in one group;
- the number of predicted groups against the number of true events;
- throughput in lines per second (one core): per dataset (small, so noisy), then over
  every dataset line repeated to 50,000 lines and over short service messages.

Datasets marked `*` were added after the rules were last changed (held out).
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
sys.path.insert(0, str(ROOT))

from incidents.fingerprinting.normalize import normalize_message  # noqa: E402


@dataclass
class Score:
    accuracy: float
    precision: float
    recall: float
    f1: float
    groups: int
    lines_per_second: float


def load(path: Path) -> tuple[list[str], list[str]]:
    contents, events = [], []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            contents.append(row["Content"])
            events.append(row["EventId"])
    return contents, events


def group_accuracy(predicted: Sequence[object], truth: Sequence[str]) -> float:
    """Loghub's group accuracy: lines whose predicted group equals their true event's set of lines."""
    by_truth: dict[str, set[int]] = defaultdict(set)
    by_group: dict[object, set[int]] = defaultdict(set)
    for index, (group, event) in enumerate(zip(predicted, truth, strict=True)):
        by_truth[event].add(index)
        by_group[group].add(index)
    correct = 0
    for members in by_group.values():
        events = {truth[index] for index in members}
        if len(events) == 1 and by_truth[next(iter(events))] == members:
            correct += len(members)
    return correct / len(truth)


def pairwise(predicted: Sequence[object], truth: Sequence[str]) -> tuple[float, float, float]:
    """Precision, recall and F1 over the pairs of lines that share a group."""

    def pairs(counts: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    same_group = pairs(Counter(predicted))
    same_event = pairs(Counter(truth))
    both = pairs(Counter(zip(predicted, truth, strict=True)))
    precision = both / same_group if same_group else 1.0
    recall = both / same_event if same_event else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def quench_groups(lines: Sequence[str]) -> list[object]:
    return [normalize_message(line) for line in lines]


def drain3_groups(lines: Sequence[str]) -> list[object]:
    from drain3 import TemplateMiner

    miner = TemplateMiner()  # no config file: drain3's defaults
    return [miner.add_log_message(line)["cluster_id"] for line in lines]


def score(method: Callable[[Sequence[str]], list[object]], lines: Sequence[str], truth: Sequence[str]) -> Score:
    started = time.perf_counter()
    predicted = method(lines)
    elapsed = time.perf_counter() - started
    precision, recall, f1 = pairwise(predicted, truth)
    return Score(
        accuracy=group_accuracy(predicted, truth),
        precision=precision,
        recall=recall,
        f1=f1,
        groups=len(set(predicted)),
        lines_per_second=len(lines) / elapsed if elapsed else float("inf"),
    )


def show_errors(lines: Sequence[str], truth: Sequence[str]) -> None:
    """Print the true events Quench splits into several templates, and the templates that merge events."""
    templates = quench_groups(lines)
    by_event: dict[str, Counter] = defaultdict(Counter)
    by_template: dict[str, Counter] = defaultdict(Counter)
    for template, event in zip(templates, truth, strict=True):
        by_event[event][template] += 1
        by_template[template][event] += 1
    for event, counter in sorted(by_event.items()):
        if len(counter) > 1:
            print(f"  split {event}:")
            for template, count in counter.most_common():
                print(f"      {count:5d}  {template}")
    for template, counter in sorted(by_template.items()):
        if len(counter) > 1:
            print(f"  merged {dict(counter)}: {template}")


# Datasets added after the normalization rules were last changed, to check them on logs they
# were not tuned on (see GROUPING.md).
HELD_OUT = frozenset({"Android", "HPC"})

# Short messages of the kind Quench mostly sees (Python exceptions and service logs), for the
# throughput figure on short lines.
SERVICE_MESSAGES = [
    "KeyError: 'sku'",
    "invalid literal for int() with base 10: 'abc'",
    "Order 8812 failed after 3 retries (took 1532ms)",
    "connection to 10.0.3.17:5432 refused",
    "Timeout after 30s waiting for lock on accounts:1042",
    "User 42 not found",
    "Request 550e8400-e29b-41d4-a716-446655440000 failed with 502",
    "payment for customer cus_9f8e7d6c5b failed: card declined",
    "Task send_invoice[4f1c2d3e-aaaa-bbbb-cccc-0123456789ab] retry: Retry in 60s",
    "GET /api/orders/123/items?page=2 returned 500",
]


def throughput(method: Callable[[Sequence[str]], list[object]], lines: Sequence[str], minimum: int = 50_000) -> float:
    """Lines per second over `lines` repeated to at least `minimum` lines: the best of three runs, one core."""
    repeated = list(lines) * max(1, -(-minimum // len(lines)))
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        method(repeated)
        best = min(best, time.perf_counter() - started)
    return len(repeated) / best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", help="dataset names (default: all in bench/data)")
    parser.add_argument("--show-errors", action="store_true", help="print Quench's split and merged events")
    args = parser.parse_args(argv)
    # drain3 warns that it found no drain3.ini: that is the point, its defaults are what we compare.
    logging.getLogger("drain3").setLevel(logging.ERROR)

    paths = sorted(DATA.glob("*_2k.csv"))
    if args.datasets:
        wanted = {name.lower() for name in args.datasets}
        paths = [path for path in paths if path.stem.split("_")[0].lower() in wanted]
    if not paths:
        print("no datasets found in", DATA)
        return 1

    quench_groups(["warm up 1 2.3 0xdeadbeef 10.0.0.1 'x y'"])
    header = (
        f"{'dataset':<12}{'lines':>6}{'events':>7} | {'method':<7}{'GA':>7}{'P':>7}{'R':>7}{'F1':>7}"
        f"{'groups':>7}{'lines/s':>10}"
    )
    print(header)
    print("-" * len(header))
    scores: dict[str, dict[str, Score]] = defaultdict(dict)
    every_line: list[str] = []
    for path in paths:
        lines, truth = load(path)
        every_line.extend(lines)
        name = path.stem.split("_")[0]
        label = f"{name}*" if name in HELD_OUT else name
        for method_name, method in (("quench", quench_groups), ("drain3", drain3_groups)):
            result = score(method, lines, truth)
            scores[method_name][name] = result
            prefix = f"{label:<12}{len(lines):>6}{len(set(truth)):>7}" if method_name == "quench" else " " * 25
            print(
                f"{prefix} | {method_name:<7}{result.accuracy:>7.3f}{result.precision:>7.3f}{result.recall:>7.3f}"
                f"{result.f1:>7.3f}{result.groups:>7d}{result.lines_per_second:>10.0f}"
            )
        if args.show_errors:
            show_errors(lines, truth)
    print("-" * len(header))
    names = list(scores["quench"])
    subsets = [("mean, all", names)]
    if any(name in HELD_OUT for name in names) and not all(name in HELD_OUT for name in names):
        subsets.append(("mean, tuned on", [n for n in names if n not in HELD_OUT]))
        subsets.append(("mean, held out*", [n for n in names if n in HELD_OUT]))
    for title, subset in subsets:
        for method_name in ("quench", "drain3"):
            results = [scores[method_name][name] for name in subset]
            mean = {
                field: sum(getattr(result, field) for result in results) / len(results)
                for field in ("accuracy", "precision", "recall", "f1")
            }
            label = f"{title} ({len(subset)})" if method_name == "quench" else ""
            print(
                f"{label:<25} | {method_name:<7}{mean['accuracy']:>7.3f}{mean['precision']:>7.3f}"
                f"{mean['recall']:>7.3f}{mean['f1']:>7.3f}"
            )
    print()
    print("throughput, one core, lines/s:")
    for title, lines in (("all dataset lines", every_line), ("short service messages", SERVICE_MESSAGES)):
        average = sum(map(len, lines)) / len(lines)
        print(
            f"  {title} (avg {average:.0f} chars): quench {throughput(quench_groups, lines):,.0f}, "
            f"drain3 {throughput(drain3_groups, lines):,.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
