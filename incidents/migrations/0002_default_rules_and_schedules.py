"""Seed sensible classification rules and the scheduled jobs (idempotent)."""

from django.db import migrations

DEFAULT_RULES = [
    # (name, position, alertname regex, message regex, category, severity override)
    ("Heartbeat alerts", 10, r"(?i)(watchdog|deadmanssnitch|heartbeat.*|.*heartbeat)", "", "heartbeat", "P3"),
    ("Heartbeat messages", 11, "", r"\bheart ?beat\b|dead ?man'?s ?switch", "heartbeat", "P3"),
    ("Backups", 20, r"(?i).*backup.*", "", "backup", "P3"),
    ("Backup messages", 21, "", r"\bbackups?\b|\bsnapshot (failed|missing)\b", "backup", "P3"),
    (
        "Alert pipeline health",
        30,
        r"(Alertmanager|Prometheus|Grafana|Loki|Thanos|Mimir|Sentry)\w*|TargetDown|ScrapeFailed\w*",
        "",
        "alert-pipeline",
        "",
    ),
    (
        "Security",
        40,
        "",
        r"brute.?force|intrusion|CVE-\d{4}-\d+|failed (ssh )?login|privilege escalation|malware|"
        r"suspicious (login|activity)|certificate (has )?expired",
        "security",
        "P1",
    ),
    (
        "Databases (alerts)",
        50,
        r"(Postgres|PG|MySQL|MariaDB|Redis|Mongo|Elasticsearch|Database|DB)\w*",
        "",
        "database",
        "",
    ),
    (
        "Databases (errors)",
        51,
        "",
        r"OperationalError|deadlock detected|too many connections|could not connect to server|"
        r"statement timeout|replication lag|connection pool exhausted|QueuePool limit",
        "database",
        "",
    ),
    (
        "Kubernetes",
        60,
        r"(Kube|Pod|Container|Deployment|StatefulSet|DaemonSet|Job|HPA|CPUThrottling)\w*",
        "",
        "kubernetes",
        "",
    ),
    ("Kubernetes messages", 61, "", r"CrashLoopBackOff|OOMKilled|ImagePullBackOff|Evicted pod", "kubernetes", ""),
    (
        "Host",
        70,
        r"(Node|Host|Disk|Filesystem|CPU|Memory|Load|Network|Clock)\w*|InstanceDown",
        "",
        "host",
        "",
    ),
]

SCHEDULES = [
    # (name, function, minutes)
    ("quench: scheduler heartbeat", "incidents.tasks.heartbeat", 1),
    ("quench: tail log sources", "incidents.tasks.tail_all_log_sources", 1),
    ("quench: re-enqueue lost wake-ups", "incidents.tasks.sweep_wakeups", 2),
    ("quench: prune frequency counters", "incidents.tasks.prune_counters", 24 * 60),
]


def seed(apps, schema_editor):
    ClassificationRule = apps.get_model("incidents", "ClassificationRule")
    for name, position, alertname, message, category, severity in DEFAULT_RULES:
        ClassificationRule.objects.get_or_create(
            name=name,
            defaults={
                "position": position,
                "match_alertname": alertname,
                "match_message": message,
                "category": category,
                "severity_override": severity,
            },
        )
    Schedule = apps.get_model("django_q", "Schedule")
    for name, func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": "I", "minutes": minutes, "repeats": -1},
        )


def unseed(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(name__in=[s[0] for s in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]
    operations = [migrations.RunPython(seed, unseed)]
