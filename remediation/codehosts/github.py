"""GitHub: the fix becomes a branch and a pull request, made through GitHub's REST API (PyGithub).

Nothing is pushed with git: the token needs only contents and pull-request access on the
repository, and never reaches a git process, a URL or a file. The commit is first built in
the service's local repository exactly as `git.GitRemoteHost` builds it (`build_commit`),
which proves that the tested patch still applies and yields the changed files with their
modes. The same files then go through GitHub's git data API: a tree on the base commit's
tree, a commit with Quench's fixed identity dated `change.committed_at`, so a repeat sends
the very same objects and gets the very same commit sha back. GitHub's tree must equal the
locally built one, so the branch holds exactly the patch that was tested.

Idempotency, for a re-delivered task or two workers at once: the branch ref is created only
if it is missing (GitHub answers 422 when it exists, and a branch that already holds this
commit is accepted); a pull request is looked up by its head before one is created, and a
422 "already exists" from a racing creator is answered by looking it up again.

The token lives in the PyGithub client only (whose debug log masks it); every error is
re-raised as a `CodeHostError` of our own wording, with the token scrubbed from anything
GitHub sent back.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import requests
from django.conf import settings
from github import Auth, Github, GithubException, GithubRetry, InputGitAuthor, InputGitTreeElement
from github.GithubException import RateLimitExceededException, UnknownObjectException
from github.PullRequest import PullRequest
from github.Repository import Repository

from remediation.codehosts.base import (
    CLOSED,
    COMMIT_AUTHOR_EMAIL,
    COMMIT_AUTHOR_NAME,
    MERGED,
    OPEN,
    BranchState,
    Change,
    CodeHost,
    CodeHostError,
    Published,
)
from remediation.codehosts.git import build_commit, changed_files
from remediation.models import GITHUB_REPOSITORY
from remediation.repositories import git, local_repository, resolve_commit

logger = logging.getLogger("remediation.codehosts.github")

# Retries for 5xx answers and rate limits, bounded: a publish runs inside a django-q2 task
# with a timeout, and PyGithub's default would wait for a primary rate limit's reset (up to
# an hour). Beyond two minutes the task fails with a clear error and is retried later.
DEFAULT_RETRY = GithubRetry(total=3, backoff_factor=1.0, max_rate_limit_wait=120)

# Compare statuses meaning "head contains base".
_CONTAINS = frozenset({"ahead", "identical"})


class GitHubHost(CodeHost):
    """Branches and pull requests on one GitHub repository ("owner/name")."""

    name = "github"

    def __init__(
        self,
        full_name: str,
        *,
        token: str | None = None,
        base_url: str | None = None,
        retry: int | GithubRetry | None = DEFAULT_RETRY,
        timeout: float = 30,
        seconds_between_requests: float | None = 0.25,
        seconds_between_writes: float | None = 1.0,
    ) -> None:
        """`token` and `base_url` default to QUENCH_GITHUB_TOKEN and QUENCH_GITHUB_API_URL.

        The pauses between requests and between writes are GitHub's advice against its
        secondary rate limits (PyGithub's defaults); tests against a local stub set them to None.
        """
        if not GITHUB_REPOSITORY.fullmatch(full_name):
            raise CodeHostError(f'{full_name!r} is not a GitHub repository name; write it as "owner/name".')
        self.full_name = full_name
        self.owner = full_name.partition("/")[0]
        self.base_url = (base_url or settings.QUENCH_GITHUB_API_URL).rstrip("/")
        self._token = token if token is not None else settings.QUENCH_GITHUB_TOKEN
        if not self._token:
            raise CodeHostError(f"No GitHub token to publish to {self.full_name}: set QUENCH_GITHUB_TOKEN.")
        self._retry = retry
        # PyGithub insists on whole seconds.
        self._timeout = max(1, math.ceil(timeout))
        self._seconds_between_requests = seconds_between_requests
        self._seconds_between_writes = seconds_between_writes

    def __repr__(self) -> str:
        return f"GitHubHost({self.full_name!r}, base_url={self.base_url!r})"

    # --- publishing ---

    def publish(self, change: Change) -> Published:
        """The fix as branch `change.branch` and one pull request into `change.default_branch`."""
        repo_path = local_repository(change.repository)
        commit = build_commit(repo_path, change)
        base = change.base_commit or resolve_commit(repo_path, change.default_branch)
        elements = _tree_elements(repo_path, base, commit)
        tested_tree = git(["rev-parse", f"{commit}^{{tree}}"], cwd=repo_path).strip()
        with self._repository("publishing the fix") as repository:
            with self._api_errors(f"creating the commit for {change.branch}"):
                sha = self._create_commit(repository, change, base, elements, tested_tree)
            with self._api_errors(f'creating the branch "{change.branch}"'):
                self._create_branch(repository, change.branch, sha)
            with self._api_errors(f'opening the pull request for "{change.branch}"'):
                pull = self._pull_request(repository, change)
                number, url = pull.number, pull.html_url
        logger.info(
            "fix published to GitHub",
            extra={"repository": self.full_name, "branch": change.branch, "commit": sha, "pull_request": number},
        )
        return Published(branch=change.branch, commit_sha=sha, pull_request_url=url, pull_request_number=number)

    def _create_commit(
        self,
        repository: Repository,
        change: Change,
        base: str,
        elements: list[InputGitTreeElement],
        tested_tree: str,
    ) -> str:
        """Tree and commit on GitHub (content-addressed: a repeat gets the same shas back)."""
        try:
            parent = repository.get_git_commit(base)
        except UnknownObjectException:
            raise CodeHostError(
                f"The tested base commit {base[:12]} is not in {self.full_name} on GitHub; "
                "the service's repository and its GitHub repository must share history."
            ) from None
        tree = repository.create_git_tree(elements, base_tree=parent.tree) if elements else parent.tree
        if tree.sha != tested_tree:
            # Only a file whose bytes did not survive as text (binary, CRLF line endings)
            # gets here; publishing it would put an untested change up for review.
            raise CodeHostError(
                f"GitHub's tree for {change.branch} ({tree.sha[:12]}) differs from the tested one "
                f"({tested_tree[:12]}): a changed file is not plain UTF-8 text with LF line endings, "
                "which this host cannot send; publish this fix by hand."
            )
        when = datetime.fromtimestamp(int(change.committed_at.timestamp()), tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        identity = InputGitAuthor(COMMIT_AUTHOR_NAME, COMMIT_AUTHOR_EMAIL, when)
        created = repository.create_git_commit(
            change.commit_message, tree, [parent], author=identity, committer=identity
        )
        return created.sha

    def _create_branch(self, repository: Repository, branch: str, sha: str) -> None:
        """Create `refs/heads/<branch>` at `sha`; accept an existing branch only if it holds `sha`."""
        try:
            repository.create_git_ref(f"refs/heads/{branch}", sha)
            return
        except GithubException as exc:
            if exc.status != 422:
                raise
            refused = exc  # "Reference already exists", or a reason of GitHub's own
        head = self._branch_head(repository, branch)
        if head is None:
            raise refused
        if head != sha and not self._contains(repository, sha, head):
            raise CodeHostError(
                f'Branch "{branch}" already exists in {self.full_name} with other work '
                f"(at {head[:12]}, which does not contain this fix); rename or delete it, then retry."
            )

    def _pull_request(self, repository: Repository, change: Change) -> PullRequest:
        """The branch's pull request: the existing one (open or not), else a new one."""
        existing = self._find_pull(repository, change.branch)
        if existing is not None:
            return existing
        try:
            return repository.create_pull(
                base=change.default_branch, head=change.branch, title=change.title, body=change.body
            )
        except GithubException as exc:
            # Another worker opened it between our lookup and our create.
            if exc.status == 422 and "already exists" in _github_message(exc).lower():
                existing = self._find_pull(repository, change.branch)
                if existing is not None:
                    return existing
            raise

    # --- checking ---

    def branch_state(self, change: Change, published: Published) -> BranchState:
        """MERGED when the pull request (or, without one, the commit) reached the base; CLOSED when
        the pull request was closed unmerged or the branch deleted; OPEN otherwise."""
        branch = published.branch
        with self._repository(f'checking "{branch}"') as repository, self._api_errors(f'checking "{branch}"'):
            pull = self._published_pull(repository, published)
            if pull is not None:
                if pull.merged:
                    return BranchState(MERGED, f"Pull request #{pull.number} was merged into {pull.base.ref}.")
                if pull.state == "closed":
                    return BranchState(CLOSED, f"Pull request #{pull.number} was closed without being merged.")
            elif published.commit_sha and self._contains(repository, published.commit_sha, change.default_branch):
                return BranchState(MERGED, f'{branch} is merged into "{change.default_branch}".')
            if self._branch_head(repository, branch) is None:
                return BranchState(CLOSED, f'Branch "{branch}" was deleted without being merged.')
            if pull is None:
                return BranchState(OPEN, f'Branch "{branch}" has no pull request yet; waiting for it to be merged.')
            return BranchState(OPEN, f"Waiting for pull request #{pull.number} to be merged into {pull.base.ref}.")

    def _published_pull(self, repository: Repository, published: Published) -> PullRequest | None:
        if published.pull_request_number is not None:
            try:
                return repository.get_pull(published.pull_request_number)
            except UnknownObjectException:
                pass  # deleted or transferred: fall back to the branch
        return self._find_pull(repository, published.branch)

    # --- GitHub helpers ---

    def _find_pull(self, repository: Repository, branch: str) -> PullRequest | None:
        """The newest pull request whose head is `branch` of this repository, whatever its state."""
        pulls = repository.get_pulls(state="all", head=f"{self.owner}:{branch}", sort="created", direction="desc")
        return next(iter(pulls), None)

    def _branch_head(self, repository: Repository, branch: str) -> str | None:
        try:
            return repository.get_git_ref(f"heads/{branch}").object.sha
        except UnknownObjectException:
            return None

    def _contains(self, repository: Repository, ancestor: str, descendant: str) -> bool:
        """Whether `descendant` (a sha or branch) has `ancestor` in its history."""
        try:
            return repository.compare(ancestor, descendant).status in _CONTAINS
        except UnknownObjectException:
            return False

    @contextlib.contextmanager
    def _repository(self, doing: str) -> Iterator[Repository]:
        """The repository through a fresh client (nothing shared between threads), closed afterwards."""
        client = Github(
            auth=Auth.Token(self._token),
            base_url=self.base_url,
            retry=self._retry,
            timeout=self._timeout,
            seconds_between_requests=self._seconds_between_requests,
            seconds_between_writes=self._seconds_between_writes,
        )
        try:
            with self._api_errors(f"{doing} (reading {self.full_name})"):
                repository = client.get_repo(self.full_name)
            yield repository
        finally:
            client.close()

    @contextlib.contextmanager
    def _api_errors(self, doing: str) -> Iterator[None]:
        """GitHub's and the network's exceptions as a CodeHostError that says what failed."""
        try:
            yield
        except RateLimitExceededException as exc:
            raise CodeHostError(
                self._scrub(
                    f"GitHub's rate limit stopped {doing} in {self.full_name} "
                    f"({exc.status}: {_github_message(exc)}); it is retried later."
                )
            ) from None
        except GithubException as exc:
            raise CodeHostError(self._scrub(self._describe(exc, doing))) from None
        except requests.RequestException as exc:
            raise CodeHostError(
                self._scrub(f"Could not reach GitHub at {self.base_url} while {doing}: {_network_reason(exc)}.")
            ) from None

    def _describe(self, exc: GithubException, doing: str) -> str:
        said = f"GitHub answered {exc.status} ({_github_message(exc)}) while {doing}"
        if exc.status in (401, 403):
            return (
                f"{said}: the token in QUENCH_GITHUB_TOKEN lacks access to {self.full_name}; it needs "
                "read and write access to its contents and pull requests."
            )
        if exc.status == 404:
            return f"{said}: {self.full_name} does not exist, or the token cannot see it."
        return f"{said} in {self.full_name}."

    def _scrub(self, text: str) -> str:
        # Nothing we format holds the token; this keeps it so should GitHub ever echo it.
        return text.replace(self._token, "***")


def _tree_elements(repo: Path, base: str, commit: str) -> list[InputGitTreeElement]:
    """What `commit` changes against `base`, as tree entries: new text with its mode, or a deletion."""
    modes = {}
    raw = git(["diff-tree", "-r", "-z", "--no-renames", base, commit], cwd=repo)
    fields = raw.split("\0")
    # Each change is ":old_mode new_mode old_sha new_sha status" then its path.
    for meta, path in zip(fields[0::2], fields[1::2], strict=False):
        if meta.startswith(":"):
            old_mode, new_mode = meta[1:].split()[:2]
            modes[path] = new_mode if new_mode != "000000" else old_mode
    elements = []
    for path, text in changed_files(repo, commit).items():
        mode = modes.get(path, "100644")
        if mode == "160000":
            raise CodeHostError(f"The fix changes the submodule {path}; this host publishes file changes only.")
        if text is None:
            elements.append(InputGitTreeElement(path, mode, "blob", sha=None))
        else:
            elements.append(InputGitTreeElement(path, mode, "blob", content=text))
    return elements


def _github_message(exc: GithubException) -> str:
    """GitHub's own words from an error answer: its message and each validation error's."""
    data = exc.data
    if not isinstance(data, dict):
        return exc.message or "no message"
    parts = [str(data.get("message") or "").strip()]
    for error in data.get("errors") or []:
        if isinstance(error, dict):
            parts.append(str(error.get("message") or error.get("code") or "").strip())
        elif isinstance(error, str):
            parts.append(error.strip())
    return "; ".join(part for part in parts if part) or exc.message or "no message"


def _network_reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "the request timed out"
    if isinstance(exc, requests.exceptions.RetryError):
        return "it kept failing after retries"
    if isinstance(exc, requests.ConnectionError):
        return "the connection failed"
    return type(exc).__name__
