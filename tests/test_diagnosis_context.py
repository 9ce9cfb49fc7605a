"""What a diagnosis is given: full traceback, source around the culprit, similar incidents, knowledge,
playbooks and complaints — read from the real repository and the real database."""

from incidents.services import resolve_incident
from knowledge.services import write_knowledge
from knowledge.tasks import embed_incident
from remediation.context import build_context
from remediation.models import Playbook


def test_the_context_holds_everything_the_issue_lists(shop, crash, post_json, make_integration):
    # History: the same crash happened before and was resolved; a runbook talks about currencies.
    past = crash("payment-missing-currency")
    embed_incident(past.pk)
    resolve_incident(past.pk, actor="oncall", note="Defaulted the currency for mobile orders")
    for title, body in [
        ("Orders from the iOS app without a currency", "Mobile orders may lack `currency` (KeyError 'currency')."),
        (
            "New shops have no orders: dashboards divide by zero",
            "average_order_value and conversion rates raise ZeroDivisionError for a shop with no orders yet.",
        ),
    ]:
        write_knowledge(path_type="manual", title=title, body=body, kind="runbook", services=["shop"])
    Playbook.objects.create(name="Page the payments team", match_service="shop", steps=[{"type": "wait", "seconds": 1}])
    incident = crash("analytics-no-orders")
    post_json(
        "/api/v1/complaints",
        {"customer_id": "cus_7", "service": "shop", "message": "My shop dashboard is not loading, ZeroDivision?"},
        make_integration("generic").raw_token,
    )

    context, snapshot = build_context(incident)

    assert snapshot is not None and len(snapshot.commit) == 40
    assert context.has_repository
    assert context.exception_type == "ZeroDivisionError"
    event = incident.events.get()
    assert context.traceback == event.traceback  # never truncated
    culprit = context.culprit_frame()
    assert culprit["path"] == "shop/analytics.py"
    assert culprit["function"] == "average_order_value"
    source = context.source_file("shop/analytics.py")
    assert source is not None and culprit["lineno"] in source.lines_of_interest
    assert ">>" in source.excerpt() and "len(orders)" in source.excerpt()
    assert context.test_command.startswith("python -m pytest")
    assert [item["name"] for item in context.playbooks] == ["Page the payments team"]
    assert [item["customer_id"] for item in context.complaints] == ["cus_7"]
    assert context.events and context.events[0]["exception"].startswith("ZeroDivisionError")
    assert context.knowledge[0]["title"] == "New shops have no orders: dashboards divide by zero"
    assert "ZeroDivisionError" in context.knowledge[0]["excerpt"]


def test_similar_past_incidents_come_with_how_they_ended(shop, crash):
    past = crash("payment-missing-currency")
    embed_incident(past.pk)
    resolve_incident(past.pk, actor="oncall")
    from knowledge.services import write_incident_summary

    write_incident_summary(past.pk)
    again = crash("payment-missing-currency")  # the same fingerprint regresses the same incident...
    assert again.pk == past.pk
    other = crash("search-no-results")
    embed_incident(other.pk)

    context, _ = build_context(other)
    similar = {item["id"]: item for item in context.similar_incidents}
    assert past.pk in similar
    assert "KeyError" in similar[past.pk]["title"] or similar[past.pk]["exception_type"] == "KeyError"
    assert similar[past.pk]["resolution"]  # the summary written when it resolved


def test_without_a_service_record_there_is_no_repository(db, post_json, make_integration):
    from incidents.models import Incident

    token = make_integration("generic").raw_token
    response = post_json(
        "/api/v1/ingest/events",
        {
            "service": "billing",
            "title": "KeyError: 'plan'",
            "traceback": 'Traceback (most recent call last):\n  File "/srv/billing/plans.py", line 3, in price\n'
            "    return PLANS[name]\nKeyError: 'plan'",
        },
        token,
    )
    incident = Incident.objects.get(pk=response.json()["results"][0]["incident_id"])
    context, snapshot = build_context(incident)
    assert snapshot is None and not context.has_repository and context.source_files == []
    assert context.frames[-1]["function"] == "price" and "path" not in context.frames[-1]


def test_the_outermost_frames_file_is_read_however_deep_the_crash(db, tmp_path):
    import subprocess

    from remediation.context import _source_files, repository_snapshot
    from remediation.models import Service

    repo = tmp_path / "deep"
    (repo / "app").mkdir(parents=True)
    names = ["handler", "service", "rules", "pricing", "money"]  # outermost first
    for name in names:
        (repo / "app" / f"{name}.py").write_text(f"def {name}():\n    pass\n")
    git = ["git", "-c", "user.name=T", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "deep"]):
        subprocess.run([*git, *args], cwd=repo, check=True, capture_output=True)
    snapshot = repository_snapshot(Service.objects.create(name="deep", repository=str(repo)))
    frames = [{"path": f"app/{name}.py", "lineno": 2} for name in names]

    read = [file.path for file in _source_files(frames, snapshot)]
    assert read == ["app/money.py", "app/pricing.py", "app/rules.py", "app/handler.py"]
