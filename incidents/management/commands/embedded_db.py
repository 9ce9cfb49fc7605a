"""Status, connection URI and stop of the embedded PostgreSQL server."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from config.database import embedded_data_dir, stop_embedded_server


class Command(BaseCommand):
    help = "Manage the embedded PostgreSQL (used when DATABASE_URL is not set): status, uri, stop."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "uri", "stop"])

    def handle(self, *args, action, **options):
        if settings.DATABASE_URL:
            raise CommandError("DATABASE_URL is set: Quench uses that server, not the embedded one.")
        if action == "stop":
            # Close our own connection first, or the fast shutdown waits on it.
            from django.db import connections

            connections.close_all()
            stopped = stop_embedded_server(settings.BASE_DIR)
            self.stdout.write("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
            return
        db = settings.DATABASES["default"]
        if action == "uri":
            self.stdout.write(f"postgresql://{db['USER']}@/{db['NAME']}?host={db['HOST']}")
        else:
            self.stdout.write(f"running: data in {embedded_data_dir(settings.BASE_DIR)}, socket in {db['HOST']}")
