"""The embedded services' supervisord config says exactly what the lab means: every argument of a
program reaches it unchanged, read back by supervisord's own parser (awkward ones included)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from supervisor.options import ServerOptions

from mdslab.services.layout import EmbeddedLayout, InternalPorts
from mdslab.services.programs import ProgramSpec
from mdslab.services.supervisor import render_config

AWKWARD = [sys.executable, "plain", "with space", "it's", 'say "hi"', "100%", "%(ENV_HOME)s", "", "a;b|c", "$HOME"]


def test_arguments_and_environment_reach_the_program_unchanged(tmp_path: Path) -> None:
    for folder in ("logs", "run"):
        (tmp_path / folder).mkdir()
    layout = EmbeddedLayout(tmp_path, InternalPorts(24000))
    config = tmp_path / "supervisord.conf"
    config.write_text(render_config(layout, [ProgramSpec("awkward", AWKWARD, env={"LAB_VALUE": "a b 5% c"})]))
    options = ServerOptions()
    options.configfile = str(config)
    options.process_config(do_usage=False)
    (group,) = options.process_group_configs
    (program,) = group.process_configs
    assert shlex.split(program.command) == AWKWARD  # what supervisord execs: split as a POSIX shell would
    assert program.environment == {"LAB_VALUE": "a b 5% c"}
