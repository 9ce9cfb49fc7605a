"""The knowledge admin: a safe Markdown preview, dead letters retried from the list, read-only signatures."""

import pytest
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from knowledge import services
from knowledge.models import DeadLetter, KnowledgeEntry, KnowledgeKind, KnowledgePath
from knowledge.rendering import render_markdown
from knowledge.services import write_knowledge

pytestmark = pytest.mark.django_db


@pytest.fixture
def entry():
    return write_knowledge(
        path_type=KnowledgePath.MANUAL,
        kind=KnowledgeKind.NOTE,
        title="Rotate the TLS certificate",
        body="# Steps\n\n1. Run `certbot renew`\n\n<script>alert('x')</script>\n\n[click](javascript:alert(1))\n",
        tags=["tls"],
    )


def test_the_change_page_shows_rendered_markdown_without_raw_html(admin_client, entry):
    response = admin_client.get(reverse("admin:knowledge_knowledgeentry_change", args=[entry.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    assert "<h1>Steps</h1>" in page
    assert "<code>certbot renew</code>" in page
    assert "<script>alert('x')</script>" not in page
    assert "&lt;script&gt;" in page
    assert 'href="javascript:' not in page
    assert "local-v2 · 384 dimensions" in page


def test_rendering_keeps_code_intact_and_escapes_html():
    html = render_markdown("```\nif a < b && c:\n```\n\n<img src=x onerror=alert(1)>\n\n![x](data:text/html;base64,AA)")
    assert "if a &lt; b &amp;&amp; c:" in html
    assert "<img src=x" not in html
    assert 'src="#"' in html


def test_the_list_searches_and_filters(admin_client, entry):
    url = reverse("admin:knowledge_knowledgeentry_changelist")
    assert "Rotate the TLS certificate" in admin_client.get(url, {"q": "certbot"}).content.decode()
    assert "Rotate the TLS certificate" not in admin_client.get(url, {"q": "kubernetes"}).content.decode()
    assert admin_client.get(url, {"kind": "note", "embedding_provider": "local"}).status_code == 200


def test_editing_an_entry_in_the_admin_reembeds_it(admin_client, entry):
    url = reverse("admin:knowledge_knowledgeentry_change", args=[entry.pk])
    response = admin_client.post(
        url,
        {"title": "Renew the TLS certificate", "kind": "note", "body": "Use certbot.", "services": "", "tags": "tls"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry.refresh_from_db()
    from knowledge.embeddings import get_provider

    assert entry.title == "Renew the TLS certificate"
    # Stored as halfvec: 16-bit floats keep about three significant digits.
    expected = get_provider().embed_one("Renew the TLS certificate\ntls\nUse certbot.")
    assert entry.embedding == pytest.approx(expected, abs=1e-3)


def test_retry_now_replays_the_selected_dead_letters(admin_client, monkeypatch, settings):
    settings.QUENCH_KNOWLEDGE_RETRY_BASE_DELAY = 0
    real = services._upsert_entry

    def down(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(services, "_upsert_entry", down)
    write_knowledge(path_type=KnowledgePath.MANUAL, kind=KnowledgeKind.NOTE, title="Lost?", body="No.")
    letter = DeadLetter.objects.get()
    monkeypatch.setattr(services, "_upsert_entry", real)

    changelist = reverse("admin:knowledge_deadletter_changelist")
    assert "unresolved" in admin_client.get(changelist).content.decode()
    response = admin_client.post(changelist, {"action": "retry_now", "_selected_action": [letter.pk]}, follow=True)

    assert "1 resolved, 0 failed again." in response.content.decode()
    letter.refresh_from_db()
    assert letter.resolved_at is not None
    assert KnowledgeEntry.objects.get().title == "Lost?"


def test_dead_letters_and_signatures_cannot_be_added_or_deleted(admin_client):
    DeadLetter.objects.create(operation="knowledge_write", payload={}, reason="x", last_attempt_at=timezone.now())
    assert admin_client.get(reverse("admin:knowledge_deadletter_add")).status_code == 403
    assert admin_client.get(reverse("admin:knowledge_incidentsignature_add")).status_code == 403
    assert admin_client.get(reverse("admin:knowledge_incidentsignature_changelist")).status_code == 200
