"""GitHubHost against a local stub of GitHub's REST API (tests/github_stub.py), with the real PyGithub.

The service's repository is a real git repository; the stub's repository starts with the
same main branch, as a GitHub repository and its local clone would.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import traceback
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from remediation.codehosts import code_host_for
from remediation.codehosts.base import (
    CLOSED,
    COMMIT_AUTHOR_EMAIL,
    COMMIT_AUTHOR_NAME,
    MERGED,
    OPEN,
    Change,
    CodeHostError,
    Published,
)
from remediation.codehosts.git import build_commit
from remediation.codehosts.github import GitHubHost
from remediation.models import Service
from tests import github_stub

TOKEN = "ghp_QuenchTestToken0123456789abcdefABCD"
BRANCH = "quench/incident-7-attempt-1"

BASE_FILES = {
    "README.md": "# shop\n",
    "app/pricing.py": "def price(item):\n    return item['price']\n",
    "app/legacy.py": "OLD = True\n",
    "bin/run.sh": "#!/bin/sh\nexec python -m app\n",
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def service_repo(tmp_path) -> Path:
    """A service's git repository: one commit on main."""
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for path, text in BASE_FILES.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    (repo / "bin/run.sh").chmod(0o755)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Initial commit")
    return repo


@pytest.fixture
def change(service_repo) -> Change:
    """The tested fix: edits a file, adds one, deletes one, edits an executable."""
    (service_repo / "app/pricing.py").write_text(
        "from app.validation import require_price\n\n\ndef price(item):\n    return require_price(item)\n"
    )
    (service_repo / "app/validation.py").write_text(
        "def require_price(item):\n    if 'price' not in item:\n        raise ValueError('item has no price')\n"
        "    return item['price']\n"
    )
    (service_repo / "app/legacy.py").unlink()
    (service_repo / "bin/run.sh").write_text('#!/bin/sh\nexec python -m app "$@"\n')
    git(service_repo, "add", "-A")
    diff = git(service_repo, "diff", "--cached")
    git(service_repo, "reset", "-q", "--hard")
    return Change(
        repository=str(service_repo),
        default_branch="main",
        base_commit=git(service_repo, "rev-parse", "main").strip(),
        diff=diff,
        branch=BRANCH,
        commit_message="Validate the price before using it\n\nQuench incident #7, attempt 1.",
        title="Fix KeyError: 'price' in price()",
        body="Quench traced incident #7 to `price()`.\n\n- [x] replay passes\n- [x] tests pass",
        committed_at=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
    )


@pytest.fixture
def github(service_repo):
    """The stub GitHub, serving acme/shop with the service repository's main branch."""
    with github_stub.serve(TOKEN, "acme/shop") as stub:
        stub.seed(service_repo, "main")
        yield stub


def host_for(stub, token: str = TOKEN, base_url: str | None = None) -> GitHubHost:
    return GitHubHost(
        stub.full_name,
        token=token,
        base_url=base_url or stub.base_url,
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )


def test_publish_opens_one_branch_and_one_pull_request(github, change, service_repo):
    published = host_for(github).publish(change)

    assert published == Published(
        branch=BRANCH,
        commit_sha=github.refs[f"refs/heads/{BRANCH}"],
        pull_request_url="https://github.com/acme/shop/pull/1",
        pull_request_number=1,
    )
    # GitHub made the very commit git makes locally: same tree, parent, identity and dates.
    assert published.commit_sha == build_commit(service_repo, change)
    commit = github.commits[published.commit_sha]
    assert commit["parents"] == [change.base_commit]
    assert commit["message"] == change.commit_message
    for who in ("author", "committer"):
        assert commit[who] == {
            "name": COMMIT_AUTHOR_NAME,
            "email": COMMIT_AUTHOR_EMAIL,
            "stamp": int(change.committed_at.timestamp()),
            "offset": "+0000",
        }
    files = github.files(BRANCH)
    assert "app/legacy.py" not in files
    assert files["app/validation.py"].startswith("def require_price(item):")
    assert "require_price(item)" in files["app/pricing.py"]
    assert files["README.md"] == BASE_FILES["README.md"]
    assert github.modes(BRANCH)["bin/run.sh"] == "100755"
    assert github.files("main") == BASE_FILES  # main untouched

    [create] = github.calls("POST", "/pulls")
    assert create.body == {"title": change.title, "body": change.body, "head": BRANCH, "base": "main"}
    pull = github.pulls[1]
    assert (pull.title, pull.body, pull.head, pull.base, pull.state) == (
        change.title,
        change.body,
        BRANCH,
        "main",
        "open",
    )


def test_publishing_again_reuses_the_branch_and_the_pull_request(github, change):
    first = host_for(github).publish(change)
    second = host_for(github).publish(change)
    third = host_for(github).publish(change)

    assert first == second == third
    assert [ref for ref in github.refs if ref != "refs/heads/main"] == [f"refs/heads/{BRANCH}"]
    assert len(github.pulls) == 1
    assert len(github.calls("POST", "/pulls")) == 1


def test_two_workers_publishing_at_once_make_one_branch_and_one_pull_request(github, change):
    # Both create the ref at the same moment, and both find no pull request before either
    # creates one: one of each POST loses with GitHub's 422 and must recover.
    github.hold("POST", "/git/refs", parties=2)
    github.hold("GET", "/pulls", parties=2)
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(host_for(github).publish, change) for _ in range(2)]
        results = [future.result(timeout=30) for future in futures]

    assert results[0] == results[1]
    assert len(github.calls("POST", "/git/refs")) == 2
    assert len(github.calls("POST", "/pulls")) == 2  # the race really happened
    assert [ref for ref in github.refs if ref != "refs/heads/main"] == [f"refs/heads/{BRANCH}"]
    assert len(github.pulls) == 1
    assert results[0].pull_request_number == 1


def test_a_reviewers_commit_on_the_branch_is_accepted(github, change):
    published = host_for(github).publish(change)
    github.commit_on(published.commit_sha, {"README.md": "# shop\n\nreviewed\n"}, "Review tweak", branch=BRANCH)

    assert host_for(github).publish(change) == published
    assert len(github.pulls) == 1


def test_a_branch_with_someone_elses_work_is_refused(github, change):
    other = github.commit_on(change.base_commit, {"README.md": "unrelated\n"}, "Someone's work", branch=BRANCH)

    with pytest.raises(CodeHostError, match=r'Branch "quench/incident-7-attempt-1" already exists.*other work'):
        host_for(github).publish(change)

    assert github.refs[f"refs/heads/{BRANCH}"] == other  # left as it was
    assert github.calls("POST", "/pulls") == []


def test_branch_state_follows_the_pull_request(github, change):
    host = host_for(github)
    published = host.publish(change)

    assert host.branch_state(change, published).state == OPEN

    github.set_pull(1, state="closed")
    closed = host.branch_state(change, published)
    assert (closed.state, closed.detail) == (CLOSED, "Pull request #1 was closed without being merged.")

    github.set_pull(1, state="closed", merged=True)
    merged = host.branch_state(change, published)
    assert (merged.state, merged.detail) == (MERGED, "Pull request #1 was merged into main.")


def test_branch_state_finds_the_pull_request_by_its_branch(github, change):
    host = host_for(github)
    published = host.publish(change)
    without_number = Published(branch=published.branch, commit_sha=published.commit_sha)
    github.set_pull(1, state="closed", merged=True)

    assert host.branch_state(change, without_number).state == MERGED


def test_a_deleted_branch_without_a_merged_pull_request_is_closed(github, change):
    host = host_for(github)
    published = host.publish(change)
    github.delete_branch(BRANCH)

    state = host.branch_state(change, published)
    assert (state.state, state.detail) == (CLOSED, f'Branch "{BRANCH}" was deleted without being merged.')


def test_a_branch_merged_without_a_pull_request_is_merged(github, change):
    host = host_for(github)
    published = host.publish(change)
    github.pulls.clear()
    github.refs["refs/heads/main"] = published.commit_sha  # fast-forwarded by hand
    github.delete_branch(BRANCH)

    assert host.branch_state(change, Published(branch=BRANCH, commit_sha=published.commit_sha)).state == MERGED


def test_a_rejected_token_is_a_clear_error_without_the_token(github, change):
    wrong = "ghp_WrongToken9876543210zyxwvutsrqpONMLK"

    with pytest.raises(CodeHostError) as caught:
        host_for(github, token=wrong).publish(change)

    message = str(caught.value)
    assert "401" in message and "Bad credentials" in message
    assert "lacks access to acme/shop" in message
    shown = "".join(traceback.format_exception(caught.value))
    for secret in (wrong, TOKEN):
        assert secret not in message and secret not in repr(caught.value) and secret not in shown
    assert github.refs.keys() == {"refs/heads/main"}


def test_an_unknown_base_commit_is_a_clear_error(github, change, service_repo):
    (service_repo / "NEW.md").write_text("only local\n")
    git(service_repo, "add", "-A")
    git(service_repo, "commit", "-q", "-m", "Not pushed")
    local_only = Change(**{**change.__dict__, "base_commit": git(service_repo, "rev-parse", "main").strip()})

    with pytest.raises(CodeHostError, match=r"is not in acme/shop on GitHub"):
        host_for(github).publish(local_only)


def test_a_file_that_would_not_reach_github_byte_for_byte_is_refused(github, change, service_repo):
    # CRLF line endings do not survive the trip through text (changed_files), so GitHub's tree
    # would differ from the tested one: refused before any branch exists.
    (service_repo / "settings.ini").write_bytes(b"[shop]\r\nretries = 1\r\n")
    git(service_repo, "add", "-A")
    git(service_repo, "commit", "-q", "-m", "Windows-edited settings")
    base = github.seed(service_repo, "main")
    (service_repo / "settings.ini").write_bytes(b"[shop]\r\nretries = 3\r\n")
    diff = subprocess.run(["git", "diff"], cwd=service_repo, check=True, capture_output=True).stdout.decode()
    git(service_repo, "checkout", "-q", "--", "settings.ini")
    crlf = Change(**{**change.__dict__, "base_commit": base, "diff": diff})

    with pytest.raises(CodeHostError, match=r"differs from the tested one.*LF line endings"):
        host_for(github).publish(crlf)

    assert github.refs.keys() == {"refs/heads/main"}
    assert github.calls("POST", "/git/commits") == []


def test_an_unreachable_github_is_a_clear_error(github, change):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]

    with pytest.raises(CodeHostError, match=r"Could not reach GitHub at http://127\.0\.0\.1:\d+ .*connection failed"):
        host_for(github, base_url=f"http://127.0.0.1:{closed_port}").publish(change)


def test_the_token_never_reaches_the_logs(github, change, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="github")  # PyGithub pins its logger to INFO otherwise
    host = host_for(github)
    published = host.publish(change)
    host.publish(change)
    host.branch_state(change, published)
    with pytest.raises(CodeHostError):
        host_for(github, token=TOKEN + "x").publish(change)

    # PyGithub's request log, which shows the request headers (masked by PyGithub), was on.
    assert any(r.name == "github.Requester" and "Authorization" in r.getMessage() for r in caplog.records)
    assert any(record.name == "remediation.codehosts.github" for record in caplog.records)
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(record.__dict__)


def test_hosts_defaults_come_from_settings(settings):
    settings.QUENCH_GITHUB_TOKEN = TOKEN
    settings.QUENCH_GITHUB_API_URL = "https://github.example.com/api/v3"

    host = code_host_for(Service(name="shop", repository="/srv/shop", github_repository="acme/shop"))

    assert isinstance(host, GitHubHost)
    assert (host.full_name, host.owner, host.base_url) == ("acme/shop", "acme", "https://github.example.com/api/v3")
    assert TOKEN not in repr(host)


def test_a_bad_repository_name_or_missing_token_is_refused(settings):
    settings.QUENCH_GITHUB_TOKEN = ""
    with pytest.raises(CodeHostError, match="set QUENCH_GITHUB_TOKEN"):
        GitHubHost("acme/shop")
    with pytest.raises(CodeHostError, match='write it as "owner/name"'):
        GitHubHost("https://github.com/acme/shop", token=TOKEN)
