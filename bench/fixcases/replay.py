"""Run one case's call in a service checkout and print what happened, as JSON (or the traceback).

    python replay.py CASE            # in the checkout: the outcome as one JSON object
    python replay.py CASE --crash    # the traceback text, as an error reporter would send it

Standard library only; it runs with the checkout as its working directory.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path.cwd()))
sys.dont_write_bytecode = True

from cases import CASES  # noqa: E402


def plain(value: object) -> object:
    """A JSON-friendly copy of a result (dataclasses and responses become dicts)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {key: plain(item) for key, item in dataclasses.asdict(value).items()}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def where(error: BaseException) -> list:
    """The innermost frame of the service's own code: [path, line, function]."""
    root = Path.cwd().resolve()
    found: list = []
    for frame in traceback.extract_tb(error.__traceback__):
        try:
            relative = Path(frame.filename).resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        found = [relative, frame.lineno, frame.name]
    return found


def main(argv: list[str]) -> int:
    case = next(case for case in CASES if case.name == argv[0])
    module = importlib.import_module(case.module)
    try:
        value = eval(case.call, vars(module))  # noqa: S307 - the cases are ours
    except Exception as error:  # noqa: BLE001 - the outcome is what we report
        if "--crash" in argv:
            traceback.print_exc()
            return 1
        kind = type(error)
        print(
            json.dumps(
                {
                    "outcome": "raised",
                    "type": kind.__name__,
                    "builtin": kind.__module__ == "builtins",
                    "value_error": isinstance(error, ValueError),
                    "message": str(error),
                    "where": where(error),
                }
            )
        )
        return 0
    if "--crash" in argv:
        print(f"{case.name}: no crash", file=sys.stderr)
        return 2
    print(json.dumps({"outcome": "returned", "value": plain(value)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
