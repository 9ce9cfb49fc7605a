"""A plain git remote: the fix becomes a branch pushed to the service's repository.

The commit is built without a working tree: the patch is applied to a temporary index
read from the tested base commit (`git apply --cached`), written as a tree and committed
with `commit-tree` under Quench's fixed identity and the approval's time, so a repeat of
the same execution makes the very same commit. A local repository (a path, bare or not)
is the remote itself: the branch is created with `update-ref` only if it does not exist
yet. A clone URL's mirror (see `remediation.repositories`) gets the commit, which is then
pushed to the URL; credentials in the URL are used for that call only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

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
from remediation.repositories import (
    NETWORK_TIMEOUT_SECONDS,
    RepositoryError,
    git,
    is_clone_url,
    local_repository,
    resolve_commit,
)


def build_commit(repo: Path, change: Change) -> str:
    """The commit of `change.diff` on `change.base_commit` in `repo` (deterministic); its sha."""
    base = change.base_commit or resolve_commit(repo, change.default_branch)
    with tempfile.TemporaryDirectory(prefix="quench-index-") as scratch:
        index = {"GIT_INDEX_FILE": os.path.join(scratch, "index")}
        try:
            git(["read-tree", base], cwd=repo, env=index)
            git(["apply", "--cached", "--whitespace=nowarn", "-"], cwd=repo, env=index, input_text=change.diff)
            tree = git(["write-tree"], cwd=repo, env=index).strip()
        except RepositoryError as exc:
            raise CodeHostError(f"The tested patch no longer applies to {base[:12]}: {exc}") from None
    return _commit_tree(
        repo, tree, [base], change.commit_message, stamp=f"{int(change.committed_at.timestamp())} +0000"
    )


def _commit_tree(repo: Path, tree: str, parents: list[str], message: str, *, stamp: str = "") -> str:
    """A commit of `tree` by Quench (author and committer); with `stamp`, dated so its sha is repeatable."""
    identity = {
        "GIT_AUTHOR_NAME": COMMIT_AUTHOR_NAME,
        "GIT_AUTHOR_EMAIL": COMMIT_AUTHOR_EMAIL,
        "GIT_COMMITTER_NAME": COMMIT_AUTHOR_NAME,
        "GIT_COMMITTER_EMAIL": COMMIT_AUTHOR_EMAIL,
    }
    if stamp:
        identity.update({"GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp})
    parent_args = [arg for parent in parents for arg in ("-p", parent)]
    return git(
        ["-c", "commit.gpgsign=false", "commit-tree", tree, *parent_args, "-F", "-"],
        cwd=repo,
        env=identity,
        input_text=message,
    ).strip()


def changed_files(repo: Path, commit: str) -> dict[str, str | None]:
    """path → new text (None when deleted) of what `commit` changes against its parent."""
    names = git(["diff-tree", "--no-commit-id", "-r", "--name-status", "--no-renames", commit], cwd=repo)
    files: dict[str, str | None] = {}
    for line in names.splitlines():
        status, _, path = line.partition("\t")
        files[path] = None if status.startswith("D") else git(["cat-file", "blob", f"{commit}:{path}"], cwd=repo)
    return files


def _branch_head(repo: Path, branch: str) -> str | None:
    try:
        return git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}"], cwd=repo).strip() or None
    except RepositoryError:
        return None


def _contains(repo: Path, ancestor: str, descendant: str) -> bool:
    try:
        git(["merge-base", "--is-ancestor", ancestor, descendant], cwd=repo)
        return True
    except RepositoryError:
        return False


class GitRemoteHost(CodeHost):
    """Branches on the service's own git repository (a local path or a clone URL)."""

    name = "git"

    def publish(self, change: Change) -> Published:
        repo = local_repository(change.repository)
        commit = build_commit(repo, change)
        if is_clone_url(change.repository):
            self._push(change, repo, commit)
        else:
            self._create_branch(repo, change.branch, commit)
        return Published(branch=change.branch, commit_sha=commit)

    def _create_branch(self, repo: Path, branch: str, commit: str) -> None:
        try:
            # The zero old value: create only, never move a branch someone else made.
            git(["update-ref", f"refs/heads/{branch}", commit, "0" * len(commit)], cwd=repo)
        except RepositoryError:
            head = _branch_head(repo, branch)
            if head is None or not _contains(repo, commit, head):
                raise CodeHostError(
                    f'Branch "{branch}" already exists in {repo} and does not hold this fix; '
                    "rename or delete it, then retry."
                ) from None

    def _push(self, change: Change, repo: Path, commit: str) -> None:
        try:
            git(
                ["push", "--quiet", "--", change.repository, f"{commit}:refs/heads/{change.branch}"],
                cwd=repo,
                timeout=NETWORK_TIMEOUT_SECONDS,
            )
        except RepositoryError as exc:
            # Rejected because the branch exists: fine if it already holds this commit.
            fresh = local_repository(change.repository)
            head = _branch_head(fresh, change.branch)
            if head is None or not _contains(fresh, commit, head):
                raise CodeHostError(f'Could not push branch "{change.branch}": {exc}') from None

    def branch_state(self, change: Change, published: Published) -> BranchState:
        repo = local_repository(change.repository)  # fetched up to date for a clone URL
        try:
            default = resolve_commit(repo, change.default_branch)
        except RepositoryError as exc:
            raise CodeHostError(str(exc)) from None
        if published.commit_sha and _contains(repo, published.commit_sha, default):
            return BranchState(MERGED, f'{published.branch} is merged into "{change.default_branch}".')
        if _branch_head(repo, published.branch) is None:
            return BranchState(CLOSED, f'Branch "{published.branch}" was deleted without being merged.')
        return BranchState(OPEN, f'Waiting for {published.branch} to be merged into "{change.default_branch}".')


def merge_branch(repository: str, branch: str, default_branch: str, *, message: str = "") -> str:
    """Merge `branch` into `default_branch` of a local repository (bare or not); the new head.

    For the demo and for teams that merge by hand on a plain git server: a fast-forward
    when the default branch has not moved, else a merge commit built with `merge-tree`.
    Refuses on conflicts. The default branch must not be checked out in a working tree.
    """
    if is_clone_url(repository):
        raise CodeHostError("Merge clone-URL repositories on their host; this merges local repositories only.")
    repo = local_repository(repository)
    head = _branch_head(repo, branch)
    if head is None:
        raise CodeHostError(f'Branch "{branch}" does not exist in {repo}.')
    target = resolve_commit(repo, default_branch)
    if _contains(repo, head, target):
        return target  # already merged
    if _contains(repo, target, head):
        new_head = head
    else:
        try:
            tree = git(["merge-tree", "--write-tree", target, head], cwd=repo).splitlines()[0].strip()
        except RepositoryError as exc:
            raise CodeHostError(f"{branch} does not merge cleanly into {default_branch}: {exc}") from None
        new_head = _commit_tree(repo, tree, [target, head], message or f"Merge {branch}")
    git(["update-ref", f"refs/heads/{default_branch}", new_head, target], cwd=repo)
    return new_head
