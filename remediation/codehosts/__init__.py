"""Code hosts: where an approved fix goes (see `base.CodeHost`).

`code_host_for(service)` picks GitHub when the service names a `github_repository` (and
QUENCH_GITHUB_TOKEN is set), else the plain git remote of its `repository`.
"""

from __future__ import annotations

from django.conf import settings

from remediation.codehosts.base import CLOSED, MERGED, OPEN, BranchState, Change, CodeHost, CodeHostError, Published
from remediation.codehosts.git import GitRemoteHost

__all__ = [
    "CLOSED",
    "MERGED",
    "OPEN",
    "BranchState",
    "Change",
    "CodeHost",
    "CodeHostError",
    "Published",
    "code_host_for",
]


def code_host_for(service) -> CodeHost:
    """The host an approved fix for `service` is published to."""
    if service.github_repository:
        if not settings.QUENCH_GITHUB_TOKEN:
            raise CodeHostError(
                f"Service {service.name!r} names the GitHub repository {service.github_repository}, "
                "but QUENCH_GITHUB_TOKEN is not set."
            )
        from remediation.codehosts.github import GitHubHost

        return GitHubHost(service.github_repository)
    return GitRemoteHost()
