#!/usr/bin/env python3
"""Rosters for grading a class: expand, split into shards, fetch.

  roster.py expand (--roster FILE | --org ORG --prefix PREFIX) [--out FILE]
      The class as a normalised roster (CSV `name,repository,ref`, sorted by
      name, names safe as folder names and unique) on stdout or in FILE.

      --roster FILE: lines `name,repository[,ref]`; `#` comments, blank
      lines and a header line `name,repository,ref` are allowed. A
      repository is `owner/repo` (on GitHub, or $GITHUB_SERVER_URL), a URL
      (`https://…`, `file://…`, `git@…`) or a local path starting with `/`,
      `./` or `../` (relative to the current folder). `ref` is a branch, tag
      or commit (default: the repository's default branch).

      --org ORG --prefix PREFIX: every repository of the organisation named
      `PREFIX-<name>`, as GitHub Classroom names an assignment's
      repositories; `<name>` (the student's GitHub login) is the row name.
      Lists them with the GitHub API and $GRADEBOOK_TOKEN.

  roster.py matrix --shards N ROSTER
      `shards=[1,…,M]` and `count=M` for $GITHUB_OUTPUT, M = N, but at most
      the number of students (and at least 1).

  roster.py fetch ROSTER --dest DIR [--deadline WHEN] [--record FILE]
                  [--strip] [-j K]
      DIR/<name> for every student: a clone of the repository checked out
      at its last commit before WHEN (ISO 8601, e.g. 2025-01-31T23:59+01:00;
      without an offset, this machine's time zone; empty: the newest
      commit). A clone that fails, an empty repository, no commit before the
      deadline or no `exercises/` leave the folder without `exercises/` and
      with a file `.gradebook-error` holding the reason: the gradebook turns
      that into a row with status `error`. Such failures never make the exit
      status non-zero; only a broken roster or command line does (2).
      --record FILE: a CSV of the commit graded (or the error) per student.
      --strip: keep only `exercises/` of each checkout, without `target/`
      folders, and at most 64 MiB of it (what the grader would take).

      The token for HTTPS clones comes from $GRADEBOOK_TOKEN through a git
      credential helper: never on a command line, in a URL, in a log or in
      the clone's .git/config.

`cargo grade gradebook --shard I/N` splits the folders into shards itself.
"""

import argparse
import concurrent.futures
import csv
import datetime
import io
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

# Written into a submission folder that could not be fetched; the grader's
# gradebook reads it (grader/src/gradebook.rs, FETCH_ERROR).
FETCH_ERROR = ".gradebook-error"

# One clone's time limit, in seconds.
CLONE_TIMEOUT = 300

# Most bytes of `exercises/` kept with --strip (the grader copies no more:
# grader/src/submission.rs, MAX_BYTES).
MAX_BYTES = 64 << 20

# The credential helper for HTTPS: reads the token from the environment when
# git asks, so the token appears in no argument list and no file.
CREDENTIAL_HELPER = '!f() { test "$1" = get && echo username=x-access-token && echo "password=$GRADEBOOK_TOKEN"; }; f'


class RosterError(Exception):
    """A broken roster or option: the run stops (exit 2)."""


def safe_name(name):
    """The folder name the gradebook would give this name (see
    grader/src/gradebook.rs, unique_name)."""
    s = "".join(c if (c.isascii() and c.isalnum()) or c in "._-" else "_" for c in name)
    return "s" + s if not s or s.startswith(".") else s


def repository_url(repo, server):
    """A roster's repository as something `git clone` takes."""
    if "://" in repo or repo.startswith("git@"):
        return repo
    if repo.startswith(("/", "./", "../")):
        return os.path.abspath(repo)
    if re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repo):
        return f"{server.rstrip('/')}/{repo.removesuffix('.git')}.git"
    raise RosterError(f"`{repo}` is not owner/repo, a URL or a path starting with / ./ ../")


def parse_roster(text, where="roster", server="https://github.com"):
    """Rows (name, repository, ref) of a roster file, sorted by name."""
    rows, lines_of = [], {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = [f.strip() for f in next(csv.reader([line]))]
        if [f.lower() for f in fields[:2]] == ["name", "repository"] and not rows:
            continue
        if len(fields) not in (2, 3) or not fields[0] or not fields[1]:
            raise RosterError(f"{where}:{number}: expected name,repository[,ref], not `{line.strip()}`")
        name = safe_name(fields[0])
        if name in lines_of:
            raise RosterError(f"{where}:{number}: {name} is also on line {lines_of[name]}")
        lines_of[name] = number
        try:
            url = repository_url(fields[1], server)
        except RosterError as e:
            raise RosterError(f"{where}:{number}: {e}") from None
        rows.append((name, url, fields[2] if len(fields) == 3 else ""))
    if not rows:
        raise RosterError(f"{where}: no students")
    return sorted(rows)


def classroom_roster(org, prefix, api, token):
    """(name, repository, "") for every repository `PREFIX-<name>` of `org`."""
    stem = prefix if prefix.endswith("-") else prefix + "-"
    rows, page = [], 1
    while True:
        url = f"{api.rstrip('/')}/orgs/{org}/repos?type=all&per_page=100&page={page}"
        request = urllib.request.Request(url, headers={"Accept": "application/vnd.github+json"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                repos = json.load(response)
        except urllib.error.HTTPError as e:
            raise RosterError(
                f"GitHub API: {e.code} {e.reason} for the repositories of {org} "
                "(is the organisation right, and may GRADEBOOK_TOKEN read it?)"
            ) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise RosterError(f"GitHub API: cannot list the repositories of {org}: {e}") from None
        for repo in repos:
            name = repo.get("name", "")
            if name.startswith(stem) and len(name) > len(stem) and not repo.get("is_template"):
                rows.append((safe_name(name[len(stem):]), repo["clone_url"], ""))
        if len(repos) < 100:
            break
        page += 1
    if not rows:
        raise RosterError(f"no repository of {org} is named {stem}<name>")
    names = [r[0] for r in rows]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RosterError(f"two repositories of {org} give the same name: {', '.join(twice)}")
    return sorted(rows)


def write_roster(rows, out):
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["name", "repository", "ref"])
    w.writerows(rows)


def read_roster(path):
    """A roster written by `expand`."""
    try:
        with open(path, newline="") as f:
            return parse_roster(f.read(), path)
    except OSError as e:
        raise RosterError(f"{path}: {e.strerror}") from None


def parse_deadline(text):
    """An ISO 8601 time as git takes it (with an offset), or None."""
    if not text or not text.strip():
        return None
    try:
        when = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise RosterError(f"--deadline: `{text}` is not an ISO 8601 time such as 2025-01-31T23:59+01:00") from None
    return when.astimezone().isoformat() if when.tzinfo is None else when.isoformat()


def redact(text):
    """A URL or git message without user:password@."""
    return re.sub(r"(://)[^/@\s]*@", r"\1***@", text)


def git(args, cwd=None, timeout=60):
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", GIT_LFS_SKIP_SMUDGE="1", GIT_ASKPASS="true")
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return subprocess.run(
        ["git", "-c", "credential.helper=", "-c", "credential.helper=" + CREDENTIAL_HELPER, *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def last_line(text):
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return redact(lines[-1]) if lines else "no message"


class FetchError(Exception):
    """This student's repository cannot be graded: a row with status error."""


def fetch_one(url, ref, deadline, dest):
    """Clone `url` into `dest` and check out the commit to grade; returns
    (commit, commit date)."""
    args = ["clone", "--quiet", "--no-checkout"]
    if url.startswith(("https://", "http://")):
        args.append("--filter=blob:none")  # only the blobs of the commit graded
    try:
        done = git([*args, "--", url, dest], timeout=CLONE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise FetchError(f"clone failed: not done after {CLONE_TIMEOUT} s") from None
    if done.returncode != 0:
        raise FetchError(f"clone failed: {last_line(done.stderr)}")
    if not git(["for-each-ref", "--count=1"], cwd=dest).stdout.strip():
        raise FetchError("empty repository (nothing pushed)")
    tip = "HEAD"
    if ref:
        for candidate in (f"refs/remotes/origin/{ref}", f"refs/tags/{ref}", ref):
            if git(["rev-parse", "--verify", "-q", candidate + "^{commit}"], cwd=dest).returncode == 0:
                tip = candidate
                break
        else:
            raise FetchError(f"no branch, tag or commit `{ref}`")
    listed = git(["rev-list", "-n", "1", "--first-parent", *([f"--before={deadline}"] if deadline else []), tip], cwd=dest)
    commit = listed.stdout.strip()
    if listed.returncode != 0 or not commit:
        dates = git(["log", "--format=%cI", "--first-parent", "--reverse", tip], cwd=dest).stdout.split()
        raise FetchError(f"no commit before the deadline {deadline}" + (f" (the first: {dates[0]})" if dates else ""))
    out = git(["checkout", "--quiet", "--detach", commit], cwd=dest, timeout=CLONE_TIMEOUT)
    if out.returncode != 0:
        raise FetchError(f"checkout of {commit[:12]} failed: {last_line(out.stderr)}")
    date = git(["show", "-s", "--format=%cI", commit], cwd=dest).stdout.strip()
    if not os.path.isdir(os.path.join(dest, "exercises")):
        raise FetchError(f"no exercises/ folder in {commit[:12]} ({date})")
    return commit, date


def strip(folder):
    """Keep only `exercises/` of a checkout, without `target/` folders."""
    for entry in os.scandir(folder):
        if entry.name != "exercises":
            remove(entry.path)
    size = 0
    for root, dirs, files in os.walk(os.path.join(folder, "exercises")):
        if "target" in dirs:
            remove(os.path.join(root, "target"))
            dirs.remove("target")
        size += sum(os.lstat(os.path.join(root, f)).st_size for f in files)
    if size > MAX_BYTES:
        raise FetchError(f"exercises/ holds {size >> 20} MiB, more than {MAX_BYTES >> 20} MiB")


def remove(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def fetch(rows, dest, deadline, jobs, stripped):
    """Fetch every row into dest/<name>; returns the record rows."""
    if os.path.exists(dest) and os.listdir(dest):
        raise RosterError(f"--dest {dest} exists and is not empty; fetch into a new folder")
    os.makedirs(dest, exist_ok=True)

    def one(row):
        name, url, ref = row
        folder = os.path.join(dest, name)
        try:
            commit, date = fetch_one(url, ref, deadline, folder)
            if stripped:
                strip(folder)
            return [name, redact(url), ref, commit, date, ""]
        except FetchError as e:
            why = str(e)
        except (OSError, subprocess.SubprocessError) as e:
            why = f"fetch failed: {e}"
        remove(os.path.join(folder, "exercises"))
        if stripped:
            remove(folder)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, FETCH_ERROR), "w") as f:
            f.write(why + "\n")
        return [name, redact(url), ref, "", "", why]

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        records = list(pool.map(one, rows))
    for name, url, _, commit, date, why in records:
        got = f"error: {why}" if why else f"{commit[:12]} of {date}"
        print(f"{name}: {got} ({url})", flush=True)
    return records


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("expand", help="the normalised roster")
    e.add_argument("--roster")
    e.add_argument("--org")
    e.add_argument("--prefix")
    e.add_argument("--out")
    m = sub.add_parser("matrix", help="the shard matrix for $GITHUB_OUTPUT")
    m.add_argument("--shards", required=True)
    m.add_argument("roster")
    f = sub.add_parser("fetch", help="clone and check out at the deadline")
    f.add_argument("roster")
    f.add_argument("--dest", required=True)
    f.add_argument("--strip", action="store_true")
    f.add_argument("--deadline", default="")
    f.add_argument("--record")
    f.add_argument("-j", "--jobs", type=int, default=4)
    a = p.parse_args(argv)
    try:
        if a.command == "expand":
            server = os.environ.get("GITHUB_SERVER_URL") or "https://github.com"
            if bool(a.roster) == bool(a.org):
                raise RosterError("give either --roster FILE or --org ORG --prefix PREFIX")
            if a.roster:
                try:
                    with open(a.roster, newline="") as fh:
                        rows = parse_roster(fh.read(), a.roster, server)
                except OSError as err:
                    raise RosterError(f"{a.roster}: {err.strerror}") from None
            else:
                if not a.prefix:
                    raise RosterError("--org needs --prefix (the assignment's repository prefix)")
                api = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
                rows = classroom_roster(a.org, a.prefix, api, os.environ.get("GRADEBOOK_TOKEN", ""))
            if a.out:
                with open(a.out, "w", newline="") as out:
                    write_roster(rows, out)
            else:
                write_roster(rows, sys.stdout)
            print(f"roster: {len(rows)} students", file=sys.stderr)
        elif a.command == "matrix":
            if not re.fullmatch(r"\s*\d+\s*", a.shards) or not 1 <= int(a.shards) <= 256:
                raise RosterError(f"--shards takes a number from 1 to 256, not `{a.shards}`")
            count = max(1, min(int(a.shards), len(read_roster(a.roster))))
            print(f"shards={json.dumps(list(range(1, count + 1)))}")
            print(f"count={count}")
        else:
            rows = read_roster(a.roster)
            records = fetch(rows, a.dest, parse_deadline(a.deadline), a.jobs, a.strip)
            if a.record:
                buf = io.StringIO()
                w = csv.writer(buf, lineterminator="\n")
                w.writerow(["name", "repository", "ref", "commit", "committed", "error"])
                w.writerows(records)
                with open(a.record, "w", newline="") as out:
                    out.write(buf.getvalue())
    except RosterError as err:
        print(f"roster.py: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
