"""Run by the deployment's own interpreter with its configuration: several ``airflow``
CLI commands, each through Airflow's own CLI parser exactly as ``airflow <args>`` runs it,
in one interpreter start instead of one per command. Arguments: one JSON list of argv
lists. Stops at the first command that fails, naming it."""

from __future__ import annotations

import json
import sys


def main(commands: list[list[str]]) -> int:
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    for argv in commands:
        print(f"airflow {' '.join(argv)}", file=sys.stderr, flush=True)
        args = parser.parse_args(argv)
        try:
            args.func(args)
        except SystemExit as exc:  # the CLI's own way to fail a command
            if exc.code not in (None, 0):
                print(f"airflow {' '.join(argv)} exited {exc.code}", file=sys.stderr)
                return int(exc.code) if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
