"""Project-wide API plumbing every app's API shares: error answers, authentication of people,
permissions, /healthz and /metrics. Any app may import it; it imports no app (apps register
their domain errors, health checks and metrics from `AppConfig.ready()`)."""
