"""`manage.py import_knowledge DIR`: Markdown runbooks upserted by path; bad files reported and skipped."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from knowledge.frontmatter import FrontMatterError, parse_document
from knowledge.models import KnowledgeEntry

pytestmark = pytest.mark.django_db

SHIPPED = Path(__file__).resolve().parent.parent / "knowledge" / "runbooks"


def run_import(directory):
    out, err = StringIO(), StringIO()
    call_command("import_knowledge", str(directory), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_shipped_runbooks_import_and_a_second_run_updates_them():
    count = len(list(SHIPPED.glob("*.md")))
    assert count >= 5

    out, err = run_import(SHIPPED)

    assert f"Imported {count} of {count} runbooks" in out
    assert f"{count}/{count} runbooks" in err
    entry = KnowledgeEntry.objects.get(source_path="postgres-connection-exhaustion.md")
    assert entry.title == "PostgreSQL connection exhaustion"
    assert entry.kind == "runbook" and entry.path_type == "runbook_import"
    assert "database" in entry.tags and "checkout" in entry.services
    assert not entry.body.startswith("---")
    assert entry.embedding is not None

    run_import(SHIPPED)
    assert KnowledgeEntry.objects.count() == count


def test_an_edited_file_updates_its_entry(tmp_path):
    (tmp_path / "ops").mkdir()
    runbook = tmp_path / "ops" / "redis.md"
    runbook.write_text("---\ntitle: Redis memory\ntags: [redis]\n---\nFlush the cache.\n")
    run_import(tmp_path)
    runbook.write_text("---\ntitle: Redis out of memory\ntags: [redis, memory]\n---\nCheck maxmemory-policy.\n")

    run_import(tmp_path)

    entry = KnowledgeEntry.objects.get()
    assert (entry.source_path, entry.title, entry.tags) == ("ops/redis.md", "Redis out of memory", ["redis", "memory"])
    assert entry.body == "Check maxmemory-policy.\n"


def test_bad_front_matter_skips_that_file_and_imports_the_rest(tmp_path):
    (tmp_path / "good.md").write_text("---\ntitle: Good\nservices: [api]\n---\nBody.\n")
    (tmp_path / "no-front-matter.md").write_text("# Heading becomes the title\n\nBody.\n")
    (tmp_path / "broken.md").write_text("---\ntitle: [unclosed\n---\nBody.\n")
    (tmp_path / "unterminated.md").write_text("---\ntitle: Oops\nBody without the closing line.\n")
    (tmp_path / "wrong-type.md").write_text("---\ntitle: Tags\ntags: {a: 1}\n---\nBody.\n")

    out, err = run_import(tmp_path)

    assert "Imported 2 of 5 runbooks" in out and "skipped 3" in out
    assert "skipped broken.md: The front matter is not valid YAML" in err
    assert "skipped unterminated.md: The front matter starts with '---' but has no closing '---' line." in err
    assert "skipped wrong-type.md: 'tags' must be a list" in err
    assert sorted(KnowledgeEntry.objects.values_list("title", flat=True)) == ["Good", "Heading becomes the title"]


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="is not a directory"):
        run_import(tmp_path / "nope")


def test_front_matter_parsing():
    document = parse_document(
        "---\ntitle: Disk full\ntags: disk, host\nowner: sre\n---\n\n# Disk\nFree space.\n", fallback_title="x"
    )
    assert (document.title, document.tags, document.services) == ("Disk full", ["disk", "host"], [])
    assert document.body == "# Disk\nFree space.\n"
    assert document.warnings == ["ignored front matter keys: owner"]
    assert parse_document("no heading\n", fallback_title="Fallback").title == "Fallback"
    with pytest.raises(FrontMatterError, match="'kind' must be one of"):
        parse_document("---\nkind: wiki\n---\ntext\n", fallback_title="x")
    with pytest.raises(FrontMatterError, match="no text"):
        parse_document("---\ntitle: Empty\n---\n\n", fallback_title="x")
