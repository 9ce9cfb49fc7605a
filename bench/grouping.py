"""Grouping quality of Quench's message templates against drain3, on complete labelled Loghub files.

Run from the project root:

    .venv/bin/python bench/grouping.py               # every *_2k.log_structured.csv in the data folder
    .venv/bin/python bench/grouping.py HDFS Linux    # some of them
    .venv/bin/python bench/grouping.py --show-errors Linux   # the events Quench splits or merges
    .venv/bin/python bench/grouping.py --data DIR    # another folder (default ../shared/data/loghub-2k,
                                                     # or $QUENCH_LOGHUB_DIR)

Each `<Name>_2k.log_structured.csv` is a complete Loghub 2k file: `Content` is the message,
`EventId` the hand-labelled event. Methods, each fed the lines in file order:

- `quench`: group = identical `normalize_message(Content)` (no state);
- `learned`: `normalize_message`, then a `TemplateBook` learning as the lines arrive, the way
  ingestion runs it for one service (state starts empty for each file; the labels are only
  used to score);
- `drain3`: `TemplateMiner()` with drain3's defaults (no masking);
- `drain3+m`: drain3 with the masking of its example configuration (ID, IP, SEQ, HEX, NUM, CMD).

Metrics per dataset, and their mean over datasets:

- group accuracy (GA), the Loghub measure (Zhu et al., "Tools and Benchmarks for Automated
  Log Parsing", ICSE-SEIP 2019): the fraction of lines whose predicted group holds exactly
  the lines of their true event, no more and no fewer;
- pairwise precision (P) over pairs of lines put in one group: below 1, events were merged;
  the merged events of Quench's methods are listed after the table;
- the number of predicted groups;
- throughput in lines per CPU second (one core): every line of every file, repeated to
  50,000+ lines, best of three runs.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "loghub-2k"
sys.path.insert(0, str(ROOT))

from incidents.fingerprinting.learning import TemplateBook  # noqa: E402
from incidents.fingerprinting.normalize import normalize_message  # noqa: E402

# The masking of drain3's example configuration (examples/drain3.ini in logpai/Drain3): what
# "drain3 with the usual masking" means in papers and blog posts.
DRAIN3_MASKING = [
    (r"((?<=[^A-Za-z0-9])|^)(([0-9a-f]{2,}:){3,}([0-9a-f]{2,}))((?=[^A-Za-z0-9])|$)", "ID"),
    (r"((?<=[^A-Za-z0-9])|^)(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})((?=[^A-Za-z0-9])|$)", "IP"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9a-f]{6,} ?){3,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)([0-9A-F]{4} ?){4,}((?=[^A-Za-z0-9])|$)", "SEQ"),
    (r"((?<=[^A-Za-z0-9])|^)(0x[a-f0-9A-F]+)((?=[^A-Za-z0-9])|$)", "HEX"),
    (r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM"),
    (r"(?<=executed cmd )(\".+?\")", "CMD"),
]


@dataclass
class Score:
    accuracy: float
    precision: float
    groups: int
    merged: list[tuple[str, dict[str, int]]]


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


def pairwise_precision(predicted: Sequence[object], truth: Sequence[str]) -> float:
    """The share of pairs of lines put in one group that belong to one event (1.0: nothing merged)."""

    def pairs(counts: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    same_group = pairs(Counter(predicted))
    both = pairs(Counter(zip(predicted, truth, strict=True)))
    return both / same_group if same_group else 1.0


def merged_events(predicted: Sequence[object], truth: Sequence[str]) -> list[tuple[str, dict[str, int]]]:
    """The groups that hold lines of two events or more: (group, {event: lines})."""
    by_group: dict[object, Counter] = defaultdict(Counter)
    for group, event in zip(predicted, truth, strict=True):
        by_group[group][event] += 1
    return [(str(group), dict(events)) for group, events in by_group.items() if len(events) > 1]


def quench_groups(lines: Sequence[str]) -> list[object]:
    return [normalize_message(line) for line in lines]


def learned_groups(lines: Sequence[str]) -> list[object]:
    """Streaming, as ingestion runs it for one service: each line's group is decided when it arrives."""
    book = TemplateBook()
    return [book.group(normalize_message(line)) for line in lines]


def drain3_groups(lines: Sequence[str]) -> list[object]:
    from drain3 import TemplateMiner

    miner = TemplateMiner()  # no config file: drain3's defaults
    return [miner.add_log_message(line)["cluster_id"] for line in lines]


def drain3_masked_groups(lines: Sequence[str]) -> list[object]:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.masking_instructions = [MaskingInstruction(pattern, name) for pattern, name in DRAIN3_MASKING]
    config.mask_prefix, config.mask_suffix = "<:", ":>"
    miner = TemplateMiner(config=config)
    return [miner.add_log_message(line)["cluster_id"] for line in lines]


METHODS: dict[str, Callable[[Sequence[str]], list[object]]] = {
    "quench": quench_groups,
    "learned": learned_groups,
    "drain3": drain3_groups,
    "drain3+m": drain3_masked_groups,
}
QUENCH_METHODS = ("quench", "learned")


def score(method: Callable[[Sequence[str]], list[object]], lines: Sequence[str], truth: Sequence[str]) -> Score:
    predicted = method(lines)
    return Score(
        accuracy=group_accuracy(predicted, truth),
        precision=pairwise_precision(predicted, truth),
        groups=len(set(predicted)),
        merged=merged_events(predicted, truth),
    )


def show_errors(method: Callable[[Sequence[str]], list[object]], lines: Sequence[str], truth: Sequence[str]) -> None:
    """Print the true events a method splits into several groups, with the lines of each group."""
    groups = method(lines)
    by_event: dict[str, Counter] = defaultdict(Counter)
    for group, event in zip(groups, truth, strict=True):
        by_event[event][group] += 1
    for event, counter in sorted(by_event.items()):
        if len(counter) > 1:
            print(f"  split {event}:")
            for group, count in counter.most_common(8):
                print(f"      {count:5d}  {group}")


def throughput(method: Callable[[Sequence[str]], list[object]], lines: Sequence[str], minimum: int = 50_000) -> float:
    """Lines per CPU second over `lines` repeated to at least `minimum` lines: the best of three runs.

    CPU time of this process rather than wall-clock time: the machine is shared, and what
    is measured is the cost of a line on one core, not how busy the neighbours were.
    """
    repeated = list(lines) * max(1, -(-minimum // len(lines)))
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        method(repeated)
        best = min(best, time.process_time() - started)
    return len(repeated) / best


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*", help="dataset names (default: every file in the data folder)")
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("QUENCH_LOGHUB_DIR") or DEFAULT_DATA),
        help="folder of Loghub *_2k.log_structured.csv files",
    )
    parser.add_argument("--show-errors", action="store_true", help="print the events the learned stage splits")
    args = parser.parse_args(argv)
    # drain3 warns that it found no drain3.ini: that is the point, its defaults are what we compare.
    logging.getLogger("drain3").setLevel(logging.ERROR)

    paths = sorted(args.data.glob("*_2k.log_structured.csv"))
    if args.datasets:
        wanted = {name.lower() for name in args.datasets}
        paths = [path for path in paths if path.name.split("_")[0].lower() in wanted]
    if not paths:
        print(f"no *_2k.log_structured.csv files in {args.data} (set --data or QUENCH_LOGHUB_DIR)")
        return 1

    header = f"{'dataset':<11}{'events':>7} |" + "".join(f"{name:>19}" for name in METHODS)
    print("GA (P, groups) per method; P < 1.000 means events were merged")
    print(header)
    print("-" * len(header))
    scores: dict[str, dict[str, Score]] = defaultdict(dict)
    every_line: list[str] = []
    for path in paths:
        lines, truth = load(path)
        every_line.extend(lines)
        name = path.name.split("_")[0]
        cells = []
        for method_name, method in METHODS.items():
            result = score(method, lines, truth)
            scores[method_name][name] = result
            cells.append(f"{result.accuracy:.3f} ({result.precision:.3f},{result.groups:>4})")
        print(f"{name:<11}{len(set(truth)):>7} |" + "".join(f"{cell:>19}" for cell in cells))
        if args.show_errors:
            show_errors(learned_groups, lines, truth)
    print("-" * len(header))
    names = list(scores["quench"])
    means = []
    for method_name in METHODS:
        results = [scores[method_name][name] for name in names]
        accuracy = sum(result.accuracy for result in results) / len(results)
        precision = sum(result.precision for result in results) / len(results)
        means.append(f" {accuracy:.3f} ({precision:.3f})".ljust(19))
    print(f"{f'mean ({len(names)})':<18} |" + "".join(means))
    print()
    for method_name in QUENCH_METHODS:
        merged = [(name, group, events) for name in names for group, events in scores[method_name][name].merged]
        print(f"{method_name}: {len(merged)} group(s) merging events")
        for name, group, events in merged:
            print(f"  {name}: {events}  {group[:100]}")
    print()
    print("throughput, one core (CPU time), every line of these files:")
    for method_name in QUENCH_METHODS:
        print(f"  {method_name}: {throughput(METHODS[method_name], every_line):,.0f} lines/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
