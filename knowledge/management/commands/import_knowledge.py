"""Import Markdown runbooks (with YAML front matter) from a folder into the knowledge base."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from knowledge.frontmatter import FrontMatterError, parse_document
from knowledge.management.progress import ProgressBar
from knowledge.models import KnowledgeEntry, KnowledgePath
from knowledge.services import write_knowledge

MAX_DOCUMENT_BYTES = 1024 * 1024
SOURCE_PATH_LENGTH = KnowledgeEntry._meta.get_field("source_path").max_length


class Command(BaseCommand):
    help = (
        "Import every *.md file under DIR as a runbook. Front matter (title, tags, services, kind) is optional; "
        "files are upserted by their path relative to DIR, so running it again updates them."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", metavar="DIR")

    def handle(self, *args, directory, **options):
        root = Path(directory).expanduser()
        if not root.is_dir():
            raise CommandError(f"{directory} is not a directory: give the folder that holds the Markdown runbooks.")
        paths = sorted(path for path in root.rglob("*.md") if path.is_file())
        if not paths:
            raise CommandError(f"No *.md files under {directory}.")
        bar = ProgressBar(self.stderr, len(paths), "runbooks")
        imported, skipped, deferred = 0, [], 0
        for path in paths:
            relative = path.relative_to(root).as_posix()
            try:
                document = self._read(path, relative)
            except FrontMatterError as exc:
                skipped.append(f"{relative}: {exc}")
            else:
                for warning in document.warnings:
                    self.stderr.write(f"{relative}: {warning}")
                entry = write_knowledge(
                    path_type=KnowledgePath.RUNBOOK_IMPORT,
                    kind=document.kind,
                    title=document.title,
                    body=document.body,
                    tags=document.tags,
                    services=document.services,
                    source_path=relative,
                )
                if entry is None:
                    deferred += 1  # a dead letter: the reconciler finishes it
                else:
                    imported += 1
            bar.advance()
        bar.finish()
        for problem in skipped:
            self.stderr.write(self.style.WARNING(f"skipped {problem}"))
        summary = f"Imported {imported} of {len(paths)} runbooks from {directory}"
        if skipped:
            summary += f"; skipped {len(skipped)} that could not be read (listed above)"
        if deferred:
            summary += f"; {deferred} left to the dead-letter reconciler (database errors)"
        self.stdout.write(summary + ".")

    def _read(self, path: Path, relative: str):
        if len(relative) > SOURCE_PATH_LENGTH:
            raise FrontMatterError(f"its path is longer than {SOURCE_PATH_LENGTH} characters.")
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise FrontMatterError(f"larger than {MAX_DOCUMENT_BYTES // 1024} KiB; is it really a runbook?")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise FrontMatterError("not UTF-8 text.") from None
        return parse_document(text, fallback_title=path.stem.replace("-", " ").replace("_", " ").capitalize())
