"""The ``hier`` command: sub-apps per area; errors become one line and an exit code.

Every module here only parses and prints. Heavy imports (torch) happen inside the
commands that need them, so ``hier --help`` and ``hier taxo …`` stay light.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

import typer

from hier.core.errors import HierError, InputError
from hier.core.interrupts import EXIT_CODES, handling_signals, received

from . import data, demo, infer, plugins, report, runs, taxo, train

app = typer.Typer(
    name="hier",
    help="Train image classifiers that respect a taxonomy, and answer with the deepest node they are sure of.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(taxo.app, name="taxo")
app.add_typer(data.app, name="data")
plugins.add_commands(app)
app.command("fit")(train.fit)
app.command("calibrate")(infer.calibrate)
app.command("predict")(infer.predict)
app.command("evaluate")(infer.evaluate)
app.command("compare")(infer.compare)
app.command("runs")(runs.runs_command)
app.command("explain")(infer.explain)
app.command("export")(infer.export)
app.command("report")(report.report)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")):
    """Train image classifiers that respect a taxonomy."""  # --debug itself is read by main()


_commands_of = None  # the plugin set whose commands are on the app (hier demo runs main once per step)


def _add_plugin_commands() -> None:
    """Each plugin's commands, one plugin at a time: one that raises, or names a command hier or an earlier
    plugin has (``predict``), is taken back off and the plugin skipped; its prints go to stderr."""
    global _commands_of
    from hier.plugins import get_plugins

    plugins = get_plugins()
    if _commands_of is plugins:
        return
    _commands_of = plugins
    for impl in reversed(plugins.pm.hook.register_commands.get_hookimpls()):  # registration order
        commands, groups = len(app.registered_commands), len(app.registered_groups)
        taken = _command_names(app.registered_commands, app.registered_groups)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                impl.function(app=app)
            clash = sorted(taken & _command_names(app.registered_commands[commands:], app.registered_groups[groups:]))
            problem = f"its command {clash[0]!r} is one of hier's own" if clash else None
        except Exception as e:
            problem = f"register_commands raised {type(e).__name__}: {e}"
        if problem:
            del app.registered_commands[commands:], app.registered_groups[groups:]
            plugins.skip(impl.plugin_name, problem)


def _command_names(commands, groups) -> set[str]:
    """The names typer gives commands and sub-apps (a function's name, with '-' for '_', when none is given)."""
    names = {c.name or c.callback.__name__.lower().replace("_", "-") for c in commands if c.callback or c.name}
    return names | {g.name or g.typer_instance.info.name for g in groups}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns (and, as a script, exits with) the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("HIER_DEBUG") == "1"
    warnings.formatwarning = lambda message, *args, **kwargs: f"hier: warning: {message}\n"
    with handling_signals():  # SIGTERM as Ctrl-C: the same cleanups, then one line
        try:
            _add_plugin_commands()
            code = app(argv, prog_name="hier", standalone_mode=False)
            code = code if isinstance(code, int) else 0
        except KeyboardInterrupt:
            code = 130
        except HierError as e:
            if debug:
                raise
            print(f"hier: error: {e}", file=sys.stderr)
            return e.exit_code
        except Exception as e:  # click's own exceptions, else runtime failures: one line unless --debug
            code = _click_exception(e)
            if code is not None:
                return code
            if debug:
                raise
            print(f"hier: error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
            return 1
    return _stopped(code) if code == 130 else code  # typer turns KeyboardInterrupt into exit code 130


def _stopped(code: int) -> int:
    """The line and exit code of a command stopped by Ctrl-C or SIGTERM (130, 143)."""
    signum = received()
    if signum is None:  # a command run inside this one (hier demo's steps) has reported it
        return code
    print(f"hier: {'terminated' if EXIT_CODES[signum] == 143 else 'interrupted'}", file=sys.stderr)
    return EXIT_CODES[signum]


def _click_exception(e: Exception) -> int | None:
    """The exit code of click's exceptions, once reported in the project's way; None for any other."""
    if _is_a(e, "Abort"):  # click's wrapping of Ctrl-C
        print("hier: interrupted", file=sys.stderr)
        return 130
    if _is_a(e, "NoArgsIsHelpError"):  # `hier taxo` alone: its help
        e.show()
        return e.exit_code
    if _is_a(e, "UsageError"):  # one line, as the project's own errors
        command = e.ctx.command_path if getattr(e, "ctx", None) else "hier"
        print(f"hier: error: {' '.join(e.format_message().split()).rstrip('.')} (see {command} --help)",
              file=sys.stderr)
        return e.exit_code
    if _is_a(e, "ClickException"):
        e.show()
        return e.exit_code
    return None


def _is_a(error: Exception, name: str) -> bool:
    """Typer ships its own copy of click, so its exceptions are matched by class name."""
    return any(cls.__name__ == name for cls in type(error).__mro__)


app.command("demo")(demo.command(main))


def run() -> None:
    sys.exit(main())


__all__ = ["app", "main", "run", "InputError"]
