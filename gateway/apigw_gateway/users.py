"""Users file: who may log in, with argon2id password hashes.

File format (JSON, written atomically, mode 0600):

    {"users": {"alice": {"id": "user-1a2b3c4d", "password_hash": "$argon2id$v=19$m=19456,t=2,p=1$...",
                          "roles": ["user"]}}}

The hash string carries its own cost, so users hashed with different costs can coexist.

    python -m apigw_gateway.users add FILE USERNAME --password-stdin [--id ID]
                                       [--time-cost 2] [--memory-cost 19456] [--parallelism 1]
    python -m apigw_gateway.users remove FILE USERNAME
    python -m apigw_gateway.users list FILE
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass

from argon2 import PasswordHasher, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Letters, digits and . _ @ + -: no whitespace, control characters, ':' (the key separator) or glob characters.
USERNAME_RE = re.compile(r"[A-Za-z0-9._@+-]{1,64}")
USER_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
# OWASP's minimum argon2id setting (m=19 MiB, t=2, p=1).
DEFAULT_COST = {"time_cost": 2, "memory_cost": 19456, "parallelism": 1}


class UsersError(Exception):
    pass


@dataclass(frozen=True)
class User:
    username: str
    id: str
    password_hash: str
    roles: tuple


def valid_username(name) -> bool:
    return isinstance(name, str) and USERNAME_RE.fullmatch(name) is not None


class UserStore:
    def __init__(self, users: dict, path=None):
        self.users = users
        self.path = path
        self._hasher = PasswordHasher()
        # verified against when the user does not exist, so unknown and known users cost the same
        hasher = PasswordHasher(**DEFAULT_COST)
        for user in users.values():
            try:
                hasher = PasswordHasher.from_parameters(extract_parameters(user.password_hash))
                break
            except InvalidHashError:
                continue
        self._dummy_hash = hasher.hash(uuid.uuid4().hex)

    @classmethod
    def load(cls, path):
        data = read_file(path)
        users = {}
        for name, entry in data["users"].items():
            users[name] = User(name, entry["id"], entry["password_hash"], tuple(entry.get("roles", ())))
        return cls(users, path)

    def get(self, username):
        return self.users.get(username)

    def verify(self, username, password) -> User | None:
        """The user if the password is right, else None; CPU-bound (run it in a thread)."""
        user = self.users.get(username)
        try:
            self._hasher.verify(user.password_hash if user else self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return None
        return user


def read_file(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise UsersError(f"users file {path} does not exist "
                         "(create it with `python -m apigw_gateway.users add`)") from None
    except (OSError, ValueError) as exc:
        raise UsersError(f"cannot read users file {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
        raise UsersError(f"users file {path}: expected {{\"users\": {{...}}}}")
    for name, entry in data["users"].items():
        if not valid_username(name):
            raise UsersError(f"users file {path}: invalid username {name!r}")
        if not isinstance(entry, dict) or not isinstance(entry.get("password_hash"), str) \
                or not USER_ID_RE.fullmatch(str(entry.get("id", ""))):
            raise UsersError(f"users file {path}: user {name} needs an id and a password_hash")
    return data


def write_file(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def add_user(path, username, password, user_id=None, roles=("user",), **cost):
    if not valid_username(username):
        raise UsersError(f"invalid username {username!r}: use 1-64 letters, digits or . _ @ + -")
    if not password:
        raise UsersError("empty password")
    data = read_file(path) if os.path.exists(path) else {"users": {}}
    existing = data["users"].get(username, {})
    user_id = user_id or existing.get("id") or f"user-{uuid.uuid4().hex[:12]}"
    if not USER_ID_RE.fullmatch(user_id):
        raise UsersError(f"invalid user id {user_id!r}")
    hasher = PasswordHasher(**{**DEFAULT_COST, **{k: v for k, v in cost.items() if v is not None}})
    data["users"][username] = {"id": user_id, "password_hash": hasher.hash(password), "roles": list(roles)}
    write_file(path, data)
    return user_id


def main(argv=None):
    parser = argparse.ArgumentParser(description="Manage the gateway's users file.")
    sub = parser.add_subparsers(dest="action", required=True)
    add = sub.add_parser("add", help="add a user or set their password")
    add.add_argument("file")
    add.add_argument("username")
    add.add_argument("--password-stdin", action="store_true", required=True,
                     help="read the password from the first line of stdin")
    add.add_argument("--id", help="user id (default: kept, or a new user-<hex>)")
    add.add_argument("--role", action="append", dest="roles", help="role (repeatable; default: user)")
    add.add_argument("--time-cost", type=int, help="argon2id iterations (default %(default)s)",
                     default=DEFAULT_COST["time_cost"])
    add.add_argument("--memory-cost", type=int, help="argon2id memory in KiB (default %(default)s)",
                     default=DEFAULT_COST["memory_cost"])
    add.add_argument("--parallelism", type=int, default=DEFAULT_COST["parallelism"],
                     help="argon2id lanes (default %(default)s)")
    remove = sub.add_parser("remove", help="remove a user")
    remove.add_argument("file")
    remove.add_argument("username")
    show = sub.add_parser("list", help="list usernames and ids")
    show.add_argument("file")
    args = parser.parse_args(argv)
    try:
        if args.action == "add":
            password = sys.stdin.readline().rstrip("\r\n")
            user_id = add_user(args.file, args.username, password, args.id, tuple(args.roles or ("user",)),
                               time_cost=args.time_cost, memory_cost=args.memory_cost,
                               parallelism=args.parallelism)
            print(user_id)
        elif args.action == "remove":
            data = read_file(args.file)
            if data["users"].pop(args.username, None) is None:
                print(f"no user {args.username} in {args.file}", file=sys.stderr)
                return 1
            write_file(args.file, data)
        else:
            for name, entry in sorted(read_file(args.file)["users"].items()):
                print("{}\t{}".format(name, entry["id"]))
    except UsersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
