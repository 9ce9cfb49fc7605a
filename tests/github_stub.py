"""A small in-process stand-in for GitHub's REST API, for the real PyGithub client to talk to.

It serves one repository on 127.0.0.1 (a ThreadingHTTPServer in a thread) and implements
only what `remediation.codehosts.github.GitHubHost` calls: the repository, git commits,
trees and refs, compare, and pull requests (list, create, get). Answers have GitHub's
shapes, including its errors: 401 "Bad credentials" for any other token, 404 "Not Found",
422 "Reference already exists" and 422 "A pull request already exists for owner:branch.".

Objects are real git objects: blob, tree and commit shas are computed as git computes
them, so a tree or commit made here can be compared with the one git builds locally, and
`seed()` (which copies a local repository's branch in) checks itself against git.

Every request is recorded (`requests`, `calls()`), so a test can count the POSTs to
/pulls; `hold()` makes the first N matching requests wait for each other, to force two
clients through a race deterministically.

    with serve(token) as github:
        github.seed(repo_path)
        host = GitHubHost(github.full_name, token=token, base_url=github.base_url, retry=None)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

DOCS = "https://docs.github.com/rest"


@dataclass(frozen=True)
class Recorded:
    """One request as the stub received it (the Authorization header is not kept)."""

    method: str
    path: str  # under the repository: "/pulls", "/git/refs", "" for the repository itself
    query: dict[str, str]
    body: object


@dataclass
class Pull:
    number: int
    title: str
    body: str
    head: str  # branch name in this repository
    base: str
    head_sha: str
    base_sha: str
    state: str = "open"
    merged: bool = False
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    closed_at: datetime | None = None


class GitHubError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict = {"message": message, "documentation_url": DOCS, "status": str(status)}
        if errors:
            self.body["errors"] = errors


def object_sha(kind: str, content: bytes) -> str:
    """The sha git gives an object of `kind` ("blob", "tree", "commit") with `content`."""
    return hashlib.sha1(f"{kind} {len(content)}\0".encode() + content, usedforsecurity=False).hexdigest()


class GitHubStub:
    """One repository's worth of GitHub, in memory; thread-safe (one lock around every answer)."""

    def __init__(self, token: str, full_name: str = "acme/shop") -> None:
        self.token = token
        self.full_name = full_name
        self.owner, self.name = full_name.split("/")
        self.base_url = ""
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, dict[str, tuple[str, str]]] = {}  # root tree → {path: (mode, blob sha)}
        self.commits: dict[str, dict] = {}
        self.refs: dict[str, str] = {}  # "refs/heads/main" → commit sha
        self.pulls: dict[int, Pull] = {}
        self._holds: list[list] = []  # [method, path, remaining, barrier]
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- running ---

    def start(self) -> None:
        stub = self

        class Handler(_Handler):
            pass

        Handler.stub = stub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="github-stub", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    # --- what tests set up and look at ---

    def seed(self, repo: Path, branch: str = "main") -> str:
        """Copy `branch` of the local repository `repo` (its commits, trees, blobs) in; its head sha."""
        shas = _git(repo, "rev-list", "--reverse", branch).decode().split()
        for sha in shas:
            raw = _git(repo, "cat-file", "commit", sha).decode()
            headers, _, message = raw.partition("\n\n")
            commit = {"parents": [], "message": message}
            for line in headers.splitlines():
                key, _, value = line.partition(" ")
                if key == "tree":
                    commit["tree"] = value
                elif key == "parent":
                    commit["parents"].append(value)
                elif key in ("author", "committer"):
                    name, email, stamp, offset = re.match(r"(.*) <(.*)> (\d+) ([+-]\d{4})$", value).groups()
                    commit[key] = {"name": name, "email": email, "stamp": int(stamp), "offset": offset}
            files = {}
            for entry in _git(repo, "ls-tree", "-r", "-z", sha).decode().split("\0"):
                if entry:
                    meta, _, path = entry.partition("\t")
                    mode, _, blob = meta.split()
                    files[path] = (mode, blob)
                    self.blobs[blob] = _git(repo, "cat-file", "blob", blob)
            assert self._store_tree(files) == commit["tree"], "the stub hashes trees differently from git"
            assert self._store_commit(commit) == sha, "the stub hashes commits differently from git"
        self.refs[f"refs/heads/{branch}"] = shas[-1]
        return shas[-1]

    def commit_on(self, parent: str, changes: dict[str, str | None], message: str, branch: str = "") -> str:
        """A commit on `parent` changing `changes` (path → text, None deletes), made as a person would."""
        files = dict(self.trees[self.commits[parent]["tree"]])
        for path, text in changes.items():
            if text is None:
                files.pop(path, None)
            else:
                files[path] = ("100644", self._store_blob(text.encode()))
        person = {"name": "Someone Else", "email": "someone@example.com", "stamp": 1700000000, "offset": "+0000"}
        sha = self._store_commit(
            {
                "tree": self._store_tree(files),
                "parents": [parent],
                "author": person,
                "committer": person,
                "message": message,
            }
        )
        if branch:
            self.refs[f"refs/heads/{branch}"] = sha
        return sha

    def files(self, commit_or_branch: str) -> dict[str, str]:
        """path → text of a commit's (or branch's) whole tree."""
        sha = self.refs.get(f"refs/heads/{commit_or_branch}", commit_or_branch)
        tree = self.trees[self.commits[sha]["tree"]]
        return {path: self.blobs[blob].decode() for path, (_, blob) in tree.items()}

    def modes(self, commit_or_branch: str) -> dict[str, str]:
        sha = self.refs.get(f"refs/heads/{commit_or_branch}", commit_or_branch)
        return {path: mode for path, (mode, _) in self.trees[self.commits[sha]["tree"]].items()}

    def set_pull(self, number: int, *, state: str, merged: bool = False) -> None:
        """What a person does on GitHub: close, merge or reopen pull request `number`."""
        with self.lock:
            pull = self.pulls[number]
            pull.state, pull.merged = state, merged
            pull.closed_at = datetime.now(UTC) if state == "closed" else None

    def delete_branch(self, branch: str) -> None:
        with self.lock:
            del self.refs[f"refs/heads/{branch}"]

    def calls(self, method: str, path: str) -> list[Recorded]:
        """The recorded requests with `method` to `path` (under the repository)."""
        return [r for r in self.requests if r.method == method and r.path == path]

    def hold(self, method: str, path: str, parties: int = 2) -> None:
        """The first `parties` requests with `method` to `path` each wait until all have arrived."""
        self._holds.append([method, path, parties, threading.Barrier(parties, timeout=10)])

    # --- git objects ---

    def _store_blob(self, content: bytes) -> str:
        sha = object_sha("blob", content)
        self.blobs[sha] = content
        return sha

    def _store_tree(self, files: dict[str, tuple[str, str]]) -> str:
        sha = self._tree_sha(files)
        self.trees[sha] = dict(files)
        return sha

    def _tree_sha(self, files: dict[str, tuple[str, str]]) -> str:
        entries: list[tuple[str, str, str]] = []
        folders: dict[str, dict[str, tuple[str, str]]] = {}
        for path, (mode, sha) in files.items():
            first, slash, rest = path.partition("/")
            if slash:
                folders.setdefault(first, {})[rest] = (mode, sha)
            else:
                entries.append((first, mode, sha))
        entries += [(name, "40000", self._tree_sha(inner)) for name, inner in folders.items()]
        # git orders a folder as if its name ended with "/".
        entries.sort(key=lambda entry: entry[0] + ("/" if entry[1] == "40000" else ""))
        body = b"".join(f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha) for name, mode, sha in entries)
        return object_sha("tree", body)

    def _store_commit(self, commit: dict) -> str:
        def person(who: dict) -> str:
            return f"{who['name']} <{who['email']}> {who['stamp']} {who['offset']}"

        lines = [f"tree {commit['tree']}", *(f"parent {p}" for p in commit["parents"])]
        lines += [f"author {person(commit['author'])}", f"committer {person(commit['committer'])}"]
        sha = object_sha("commit", ("\n".join(lines) + "\n\n" + commit["message"]).encode())
        self.commits[sha] = commit
        return sha

    def _ancestors(self, sha: str) -> set[str]:
        seen, todo = set(), [sha]
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo.extend(self.commits[current]["parents"])
        return seen

    def _resolve(self, name: str) -> str:
        sha = self.refs.get(f"refs/heads/{name}", name)
        if sha not in self.commits:
            raise GitHubError(404, "Not Found")
        return sha

    # --- the API ---

    def answer(self, method: str, path: str, query: dict[str, str], body: object) -> tuple[int, object]:
        prefix = f"/repos/{self.full_name}"
        if path != prefix and not path.startswith(prefix + "/"):
            raise GitHubError(404, "Not Found")
        route = path[len(prefix) :]
        if method == "GET" and route == "":
            return 200, self._repo_json()
        if match := re.fullmatch(r"/git/commits/([0-9a-f]{40})", route):
            if method == "GET" and match.group(1) in self.commits:
                return 200, self._commit_json(match.group(1))
            raise GitHubError(404, "Not Found")
        if method == "POST" and route == "/git/trees":
            return 201, self._create_tree(body)
        if method == "POST" and route == "/git/commits":
            return 201, self._create_commit(body)
        if method == "POST" and route == "/git/refs":
            return 201, self._create_ref(body)
        if method == "GET" and route.startswith("/git/ref/"):
            ref = "refs/" + unquote(route[len("/git/ref/") :])
            if ref not in self.refs:
                raise GitHubError(404, "Not Found")
            return 200, self._ref_json(ref)
        if method == "GET" and (match := re.fullmatch(r"/compare/(.+?)\.\.\.(.+)", route)):
            return 200, self._compare(unquote(match.group(1)), unquote(match.group(2)))
        if route == "/pulls" and method == "GET":
            return 200, self._list_pulls(query)
        if route == "/pulls" and method == "POST":
            return 201, self._create_pull(body)
        if method == "GET" and (match := re.fullmatch(r"/pulls/(\d+)", route)):
            number = int(match.group(1))
            if number not in self.pulls:
                raise GitHubError(404, "Not Found")
            return 200, self._pull_json(self.pulls[number], full=True)
        raise GitHubError(404, "Not Found")

    def _create_tree(self, body: dict) -> dict:
        files: dict[str, tuple[str, str]] = {}
        if body.get("base_tree"):
            if body["base_tree"] not in self.trees:
                raise GitHubError(422, "base_tree is not a valid tree oid")
            files = dict(self.trees[body["base_tree"]])
        for element in body["tree"]:
            path, mode = element["path"], element["mode"]
            if mode not in ("100644", "100755", "120000") or element.get("type") != "blob":
                raise GitHubError(422, f"tree.mode {mode} / type {element.get('type')} not supported by the stub")
            if "content" in element:
                files[path] = (mode, self._store_blob(element["content"].encode()))
            elif element.get("sha") is None:
                files.pop(path, None)
            elif element["sha"] in self.blobs:
                files[path] = (mode, element["sha"])
            else:
                raise GitHubError(422, "tree.sha is not a valid blob")
        sha = self._store_tree(files)
        return {
            "sha": sha,
            "url": f"{self._repo_url()}/git/trees/{sha}",
            "tree": [
                {
                    "path": p,
                    "mode": m,
                    "type": "blob",
                    "sha": b,
                    "size": len(self.blobs[b]),
                    "url": f"{self._repo_url()}/git/blobs/{b}",
                }
                for p, (m, b) in sorted(files.items())
            ],
            "truncated": False,
        }

    def _create_commit(self, body: dict) -> dict:
        if body["tree"] not in self.trees:
            raise GitHubError(422, "Tree SHA does not exist")
        if any(parent not in self.commits for parent in body.get("parents", [])):
            raise GitHubError(422, "Parent SHA does not exist or is not a commit object")
        # Like GitHub: the committer defaults to the author, the author to the token's user, now.
        default = {"name": "quench-bot", "email": "quench-bot@users.noreply.github.com", "date": _now()}
        author = _person(body.get("author") or default)
        committer = _person(body.get("committer") or body.get("author") or default)
        sha = self._store_commit(
            {
                "tree": body["tree"],
                "parents": list(body.get("parents", [])),
                "author": author,
                "committer": committer,
                "message": body["message"],
            }
        )
        return self._commit_json(sha)

    def _create_ref(self, body: dict) -> dict:
        ref, sha = body["ref"], body["sha"]
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise GitHubError(422, "Reference name is not valid")
        if sha not in self.commits:
            raise GitHubError(422, "Object does not exist")
        if ref in self.refs:
            raise GitHubError(422, "Reference already exists")
        self.refs[ref] = sha
        return self._ref_json(ref)

    def _compare(self, base: str, head: str) -> dict:
        base_sha, head_sha = self._resolve(base), self._resolve(head)
        base_history, head_history = self._ancestors(base_sha), self._ancestors(head_sha)
        ahead, behind = len(head_history - base_history), len(base_history - head_history)
        status = (
            "identical" if base_sha == head_sha else "ahead" if not behind else "behind" if not ahead else "diverged"
        )
        url = f"{self._repo_url()}/compare/{base}...{head}"
        return {
            "url": url,
            "html_url": f"https://github.com/{self.full_name}/compare/{base}...{head}",
            "status": status,
            "ahead_by": ahead,
            "behind_by": behind,
            "total_commits": ahead,
            "commits": [],
            "files": [],
        }

    def _list_pulls(self, query: dict[str, str]) -> list[dict]:
        state = query.get("state", "open")
        pulls = [
            pull
            for pull in self.pulls.values()
            if (state == "all" or pull.state == state)
            and ("head" not in query or query["head"] == f"{self.owner}:{pull.head}")
            and ("base" not in query or query["base"] == pull.base)
        ]
        pulls.sort(key=lambda pull: pull.number, reverse=query.get("direction", "desc") == "desc")
        return [self._pull_json(pull, full=False) for pull in pulls]

    def _create_pull(self, body: dict) -> dict:
        head = body.get("head", "")
        if head.startswith(f"{self.owner}:"):
            head = head.partition(":")[2]
        base = body.get("base", "")
        invalid = [
            {"resource": "PullRequest", "field": name, "code": "invalid"}
            for name, branch in (("head", head), ("base", base))
            if f"refs/heads/{branch}" not in self.refs
        ]
        if invalid:
            raise GitHubError(422, "Validation Failed", invalid)
        if any(p.head == head and p.base == base and p.state == "open" for p in self.pulls.values()):
            raise GitHubError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {self.owner}:{head}.",
                    }
                ],
            )
        head_sha, base_sha = self.refs[f"refs/heads/{head}"], self.refs[f"refs/heads/{base}"]
        if head_sha in self._ancestors(base_sha):
            raise GitHubError(
                422,
                "Validation Failed",
                [{"resource": "PullRequest", "code": "custom", "message": f"No commits between {base} and {head}"}],
            )
        number = max(self.pulls, default=0) + 1
        self.pulls[number] = Pull(
            number=number,
            title=body.get("title") or "",
            body=body.get("body") or "",
            head=head,
            base=base,
            head_sha=head_sha,
            base_sha=base_sha,
        )
        return self._pull_json(self.pulls[number], full=True)

    # --- GitHub's shapes ---

    def _repo_url(self) -> str:
        return f"{self.base_url}/repos/{self.full_name}"

    def _user_json(self, login: str) -> dict:
        return {"login": login, "id": abs(hash(login)) % 10**6, "type": "User", "url": f"{self.base_url}/users/{login}"}

    def _repo_json(self) -> dict:
        return {
            "id": 4242,
            "node_id": "R_stub",
            "name": self.name,
            "full_name": self.full_name,
            "private": True,
            "owner": self._user_json(self.owner),
            "html_url": f"https://github.com/{self.full_name}",
            "url": self._repo_url(),
            "default_branch": "main",
            "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        }

    def _commit_json(self, sha: str) -> dict:
        commit = self.commits[sha]
        return {
            "sha": sha,
            "node_id": f"C_{sha[:10]}",
            "url": f"{self._repo_url()}/git/commits/{sha}",
            "html_url": f"https://github.com/{self.full_name}/commit/{sha}",
            "author": _person_json(commit["author"]),
            "committer": _person_json(commit["committer"]),
            "message": commit["message"],
            "tree": {"sha": commit["tree"], "url": f"{self._repo_url()}/git/trees/{commit['tree']}"},
            "parents": [
                {
                    "sha": p,
                    "url": f"{self._repo_url()}/git/commits/{p}",
                    "html_url": f"https://github.com/{self.full_name}/commit/{p}",
                }
                for p in commit["parents"]
            ],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        }

    def _ref_json(self, ref: str) -> dict:
        sha = self.refs[ref]
        return {
            "ref": ref,
            "node_id": f"REF_{ref}",
            "url": f"{self._repo_url()}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{self._repo_url()}/git/commits/{sha}"},
        }

    def _pull_json(self, pull: Pull, *, full: bool) -> dict:
        def side(branch: str, sha: str) -> dict:
            return {
                "label": f"{self.owner}:{branch}",
                "ref": branch,
                "sha": sha,
                "user": self._user_json(self.owner),
                "repo": self._repo_json(),
            }

        stamp = pull.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        data = {
            "url": f"{self._repo_url()}/pulls/{pull.number}",
            "id": 9000 + pull.number,
            "node_id": f"PR_{pull.number}",
            "html_url": f"https://github.com/{self.full_name}/pull/{pull.number}",
            "number": pull.number,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "body": pull.body,
            "user": self._user_json("quench-bot"),
            "created_at": stamp,
            "updated_at": stamp,
            "closed_at": pull.closed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if pull.closed_at else None,
            "merged_at": pull.closed_at.strftime("%Y-%m-%dT%H:%M:%SZ") if pull.merged and pull.closed_at else None,
            "draft": False,
            "head": side(pull.head, pull.head_sha),
            "base": side(pull.base, pull.base_sha),
        }
        if full:  # only the single pull request carries these, as on GitHub
            data.update({"merged": pull.merged, "mergeable": None, "comments": 0, "commits": 1})
        return data

    # --- transport ---

    def _held(self, method: str, path: str) -> threading.Barrier | None:
        with self.lock:
            for hold in self._holds:
                if hold[0] == method and hold[1] == path and hold[2] > 0:
                    hold[2] -= 1
                    return hold[3]
        return None

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        url = urlsplit(request.path)
        path = url.path.rstrip("/")
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        prefix = f"/repos/{self.full_name}"
        short = unquote(path)[len(prefix) :] if path.startswith(prefix) else unquote(path)
        with self.lock:
            self.requests.append(Recorded(request.command, short, query, body))
        if request.headers.get("Authorization") not in (f"token {self.token}", f"Bearer {self.token}"):
            status, answer = 401, GitHubError(401, "Bad credentials").body
        else:
            barrier = self._held(request.command, short)
            if barrier is not None:
                barrier.wait()
            try:
                with self.lock:
                    status, answer = self.answer(request.command, path, query, body)
            except GitHubError as exc:
                status, answer = exc.status, exc.body
        payload = json.dumps(answer).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json; charset=utf-8")
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)


class _Handler(BaseHTTPRequestHandler):
    stub: GitHubStub

    def do_GET(self) -> None:
        self.stub.handle(self)

    do_POST = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: object) -> None:  # keep test output clean
        pass


@contextlib.contextmanager
def serve(token: str, full_name: str = "acme/shop") -> Iterator[GitHubStub]:
    """A running stub for one test; stopped afterwards."""
    stub = GitHubStub(token, full_name)
    stub.start()
    try:
        yield stub
    finally:
        stub.stop()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _person(given: dict) -> dict:
    when = datetime.fromisoformat(given.get("date") or _now())
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    minutes = int(when.utcoffset().total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    offset = f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"
    return {"name": given["name"], "email": given["email"], "stamp": int(when.timestamp()), "offset": offset}


def _person_json(person: dict) -> dict:
    sign = -1 if person["offset"].startswith("-") else 1
    hours, minutes = int(person["offset"][1:3]), int(person["offset"][3:5])
    zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    when = datetime.fromtimestamp(person["stamp"], tz=zone).isoformat().replace("+00:00", "Z")
    return {"name": person["name"], "email": person["email"], "date": when}


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True).stdout
