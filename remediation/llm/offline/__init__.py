"""The offline analyzer: the provider Quench uses when there is no LLM key.

- `analyzer`: `OfflineAnalyzer` (diagnose, propose_patch, critique);
- `sites`: finding the construct on the culprit line that raised;
- `rewrites`: the strategies of each crash class as minimal libcst rewrites;
- `inputs`: rebuilding the failing input, frame by frame, from the traceback and the code;
- `replay`: the test that replays it through the outermost frame and says what it must end in;
- `contracts` and `rules`: what the code promises (annotations, documented defaults, callers,
  how errors are reported) and the rules that allow, refuse and rank the strategies;
- `critic`: reading a failed attempt, and what the history asks of the next one.
"""

from remediation.llm.offline.analyzer import OfflineAnalyzer, replay_test_for

__all__ = ["OfflineAnalyzer", "replay_test_for"]
