"""Alert sources: one folder per kind, as Zulip's `zerver/webhooks/<source>/`.

Each `incidents/sources/<kind>/` holds the source's parser (`parser.py`: payload →
`Signal`s, pure, no database), the rules that are the source's own (how a sender
authenticates when it is not the integration token, how its dedup keys work), its
documentation-derived JSON fixtures (`fixtures/`) and its parser tests (`test_*.py`, which
pytest collects through `testpaths`; the HTTP side is in `tests/test_ingest_*.py`). Adding a source is copying a folder.
Shared pieces stay here: `base` (Signal, Frame, PayloadError), `_fields` (typed field
readers), `_prometheus` (Alertmanager and Grafana share Prometheus' alert shape),
`traceback` (Python traceback text ⇄ frames).
"""
