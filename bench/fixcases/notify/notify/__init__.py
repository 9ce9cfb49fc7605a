"""Notify: the jobs behind e-mail digests, delivery reports, contact imports and the portal's inbox."""
