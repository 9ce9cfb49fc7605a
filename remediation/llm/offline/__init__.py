"""The offline analyzer: the provider Quench uses when there is no LLM key.

- `analyzer`: `OfflineAnalyzer` (diagnose, propose_patch, critique);
- `sites`: finding the construct on the culprit line that raised;
- `rewrites`: the strategies of each crash class as minimal libcst rewrites;
- `replay`: rebuilding the failing input and writing the test that replays it.
"""

from remediation.llm.offline.analyzer import OfflineAnalyzer

__all__ = ["OfflineAnalyzer"]
