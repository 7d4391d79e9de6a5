"""Entry point of ``python -m offshoot.services <role>``; the same process as
``offshoot serve --role <role>``, configured by the environment only."""

from __future__ import annotations

import asyncio
import sys

from offshoot.roles import ROLES, Settings, serve


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(
            f"usage: python -m offshoot.services <role>[,<role>...]  (roles: {', '.join(ROLES)}, all)"
        )
        return 2
    asyncio.run(serve(Settings.from_env(roles=argv[0])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
