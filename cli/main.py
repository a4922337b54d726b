"""The ``hier`` command: sub-apps per area; errors become one line and an exit code.

Every module here only parses and prints. Heavy imports (torch) happen inside the
commands that need them, so ``hier --help`` and ``hier taxo …`` stay light.
"""

from __future__ import annotations

import os
import sys
import warnings

import typer

from hier.core.errors import HierError, InputError

from . import data, demo, infer, plugins, taxo, train

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
app.command("runs")(infer.runs_command)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors.")):
    """Train image classifiers that respect a taxonomy."""  # --debug itself is read by main()


def _add_plugin_commands() -> None:
    from hier.plugins import get_plugins

    get_plugins().pm.hook.register_commands(app=app)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns (and, as a script, exits with) the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("HIER_DEBUG") == "1"
    warnings.formatwarning = lambda message, *args, **kwargs: f"hier: warning: {message}\n"
    try:
        _add_plugin_commands()
        code = app(argv, prog_name="hier", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except KeyboardInterrupt:
        print("hier: interrupted", file=sys.stderr)
        return 130
    except HierError as e:
        if debug:
            raise
        print(f"hier: error: {e}", file=sys.stderr)
        return e.exit_code
    except Exception as e:  # runtime failures: one line unless --debug
        if _is_a(e, "Abort"):  # click's wrapping of Ctrl-C
            print("hier: interrupted", file=sys.stderr)
            return 130
        if _is_a(e, "ClickException"):  # usage errors: click prints its own short message
            e.show()
            return e.exit_code
        if debug:
            raise
        print(f"hier: error: {type(e).__name__}: {e} (run with --debug for the traceback)", file=sys.stderr)
        return 1


def _is_a(error: Exception, name: str) -> bool:
    """Typer ships its own copy of click, so its exceptions are matched by class name."""
    return any(cls.__name__ == name for cls in type(error).__mro__)


app.command("demo")(demo.command(main))


def run() -> None:
    sys.exit(main())


__all__ = ["app", "main", "run", "InputError"]
