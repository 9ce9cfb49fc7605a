"""LLM providers behind one interface: Anthropic, and the offline analyzer (the default without a key).

`get_llm_provider()` picks one from settings; everything else sees only `LLMProvider`.
"""

from remediation.llm.base import (  # noqa: F401
    AttemptRecord,
    CriticFeedback,
    DiagnosisContext,
    DiagnosisResult,
    LLMError,
    LLMProvider,
    PatchProposal,
    PostmortemNarrative,
    QuotaExhausted,
    SourceFile,
    Usage,
    get_llm_provider,
)
