"""Serializer fields stricter than DRF's defaults."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans.

    DRF's CharField turns `42` into "42" and `1e400` into "inf"; a client that sends a number
    where the schema says string has a bug, and silently storing its stringified value hides it.
    """

    default_error_messages = {"number": "Must be a string, not a number."}

    def to_internal_value(self, data):
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            self.fail("number")
        return super().to_internal_value(data)  # refuses booleans, lists and objects itself
