"""What the incidents app tells the apps above it.

`incidents` is the bottom layer: it never imports `knowledge`, `remediation` or
`notifications`. They subscribe to these signals in their `AppConfig.ready()`.

- `incident_transitioned` is sent inside the transaction that changed an incident's
  status, with the incident's row locked (kwargs: `incident`, `from_status`, `to_status`,
  `actor`, `message`). Receivers may write in that transaction (superseding a proposal
  belongs with the change that made it moot) and hand slow work to the queue with
  `transaction.on_commit`, so a rolled-back change never reaches it. An exception in a
  receiver rolls the change back.
- `incident_opened` is sent inside the transaction that created a new incident (kwargs:
  `incident`), after its first event is stored. Same rules as `incident_transitioned`.
- `incident_needs_attention` is sent by the wake-up task of a new, regressed or much
  noisier incident, outside any transaction (kwargs: `incident_id`, `reason`). Its
  receivers do their work in that task; a failure is theirs to log, the wake-up is done.
"""

from django.dispatch import Signal

incident_transitioned = Signal()
incident_opened = Signal()
incident_needs_attention = Signal()

# Sent inside the transaction that published (or re-saved a published) postmortem
# (kwargs: `postmortem`). The knowledge app writes it into the knowledge base on commit.
postmortem_published = Signal()
