"""Make sure one user exists in the reference gateway's users file with the given password (idempotent).

Usage: python user_present.py USERS_FILE USERNAME [USER_ID] [ROLE,ROLE]; the password comes from
APIGW_USER_PASSWORD.  Prints "unchanged" when the user already has that password, id and roles,
else rewrites the entry (via apigw_gateway.users) and prints "changed".  Needs apigw_gateway on
PYTHONPATH.
"""
import os
import sys

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from apigw_gateway.users import UsersError, add_user, read_file


def main():
    path, username = sys.argv[1], sys.argv[2]
    user_id = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] else None
    roles = tuple(r for r in (sys.argv[4] if len(sys.argv) > 4 else "user").split(",") if r)
    password = os.environ.get("APIGW_USER_PASSWORD", "")
    try:
        entry = read_file(path)["users"].get(username) if os.path.exists(path) else None
        if entry and (user_id is None or entry["id"] == user_id) and tuple(entry.get("roles", ())) == roles:
            try:
                PasswordHasher().verify(entry["password_hash"], password)
                print("unchanged")
                return 0
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                pass
        add_user(path, username, password, user_id, roles)
    except UsersError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
