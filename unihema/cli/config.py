"""``unihema config show | schema``: the resolved config and every key of the schema."""

from __future__ import annotations

import argparse
import logging

from unihema.tables import plain_table

logger = logging.getLogger("unihema")


# --------------------------------------------------------------------------------- config
def cmd_config_show(args: argparse.Namespace) -> int:
    from unihema.config import load_config, to_yaml

    print(to_yaml(load_config(args.file, args.overrides)), end="")
    return 0


def cmd_config_schema(args: argparse.Namespace) -> int:
    from unihema.config import schema_table

    rows = [("key", "type", "default", "meaning")] + schema_table()
    print(plain_table(rows, right_align_numbers=False))
    return 0


def add_config_parser(sub) -> None:
    """Add these commands to the ``unihema`` subparsers ``sub``."""
    cfg = sub.add_parser("config", help="show the resolved config or the schema")
    csub = cfg.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    cfg.set_defaults(func=lambda a: (cfg.print_help(), 2)[1])
    c = csub.add_parser("show", help="print a config with _base_ and overrides resolved")
    c.add_argument("file", nargs="?", default=None, help="YAML file (default: built-in defaults)")
    c.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotted overrides")
    c.set_defaults(func=cmd_config_show)
    c = csub.add_parser("schema", help="every key with type, default and meaning")
    c.set_defaults(func=cmd_config_schema)
