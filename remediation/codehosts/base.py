"""The one interface approved code fixes go through, whatever hosts the service's code.

A `CodeHost` publishes a tested patch as a branch (and, where the host has them, a pull
request), and later says whether that branch was merged. Publishing must be idempotent: a
redelivered execution task, or a second cluster that took over a stale claim, must end
with the same single branch and at most one pull request. Implementations get there by
building the commit deterministically (fixed author, committer and dates, so the same
patch on the same base is the same commit sha) and by looking for their own branch and
pull request before creating one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from remediation.repositories import RepositoryError

COMMIT_AUTHOR_NAME = "Quench"
COMMIT_AUTHOR_EMAIL = "quench@users.noreply.quench.invalid"


class CodeHostError(RepositoryError):
    """Publishing or checking a branch failed; the message says what and never carries a credential."""


@dataclass(frozen=True)
class Change:
    """A tested patch, ready to become a branch and a pull request."""

    repository: str  # the Service's repository: a local path or a clone URL
    default_branch: str
    base_commit: str  # the commit the patch was tested on
    diff: str
    branch: str  # quench/incident-<id>-attempt-<n>
    commit_message: str
    title: str  # the pull request's title
    body: str  # the pull request's body (Markdown)
    committed_at: datetime  # the commit's author and committer date: fixed, so the sha is too


@dataclass(frozen=True)
class Published:
    branch: str
    commit_sha: str
    pull_request_url: str = ""
    pull_request_number: int | None = None


OPEN, MERGED, CLOSED = "open", "merged", "closed"


@dataclass(frozen=True)
class BranchState:
    """Where a published fix stands: open (waiting), merged, or closed (PR closed unmerged, branch deleted)."""

    state: str
    detail: str


class CodeHost:
    """Publishes fixes to one kind of host. Subclasses implement both methods."""

    name = ""

    def publish(self, change: Change) -> Published:
        raise NotImplementedError

    def branch_state(self, change: Change, published: Published) -> BranchState:
        raise NotImplementedError
