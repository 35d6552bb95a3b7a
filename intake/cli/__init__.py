"""The ``icli`` command: run the instance, migrate, manage users, seed a demo, check integrity.

One module per command group, as rq splits ``rq/cli/``: ``processes`` (run, web, worker),
``database``, ``users``, ``meetings`` (meetings, generate), ``keys``, ``audit_log``,
``retention``, ``demo`` (demo, check), ``init`` (a production instance's first steps),
``backup`` (backup, restore);
``common`` holds what they share.
"""

from __future__ import annotations

import click

from intake.cli.audit_log import audit_group
from intake.cli.backup import backup, restore
from intake.cli.database import db
from intake.cli.demo import check, demo
from intake.cli.init import init_group
from intake.cli.keys import keys
from intake.cli.meetings import generate, meetings
from intake.cli.processes import run, web, worker
from intake.cli.retention import retention
from intake.cli.users import users


@click.group()
def main() -> None:
    """ICL-I Seine-Saint-Denis: situation sheets, meetings and their documents."""


main.add_command(init_group)
main.add_command(db)
main.add_command(run)
main.add_command(web)
main.add_command(worker)
main.add_command(users)
main.add_command(meetings)
main.add_command(generate)
main.add_command(keys)
main.add_command(audit_group)
main.add_command(retention)
main.add_command(demo)
main.add_command(check)
main.add_command(backup)
main.add_command(restore)
