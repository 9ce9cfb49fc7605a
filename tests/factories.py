"""factory-boy factories for the incidents models."""

from datetime import timedelta

import factory
from django.utils import timezone

from incidents.choices import IntegrationKind
from incidents.models import Integration, LogSource, Silence


class IntegrationFactory(factory.django.DjangoModelFactory):
    """An integration; the raw token is on `.raw_token` (only its hash is stored)."""

    class Meta:
        model = Integration

    name = factory.Sequence(lambda n: f"integration-{n}")
    kind = IntegrationKind.GENERIC
    enabled = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        integration = model_class(*args, **kwargs)
        integration.raw_token = integration.set_new_token()
        integration.save()
        return integration


class SilenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Silence

    comment = factory.Sequence(lambda n: f"maintenance window {n}")
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(minutes=1))
    ends_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))


class LogSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = LogSource

    name = factory.Sequence(lambda n: f"log-{n}")
    path = "/tmp/quench-test.jsonl"
    service = "shop"
