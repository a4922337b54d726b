"""``hier plugins``, ``hier heads``, ``hier losses``, ``hier backbones``: what is installed."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

console = Console()


def plugins(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")):
    """Installed plugins: distribution, version, hooks, status (and the error of a broken one).

    Example: hier plugins --json
    """
    from hier.plugins import get_plugins

    get_plugins().check_registries()  # a plugin that takes a built-in's name is shown skipped, with why
    infos = list(get_plugins().info.values())
    if as_json:
        typer.echo(json.dumps([i.to_dict() for i in infos], indent=1))
        return
    table = Table("name", "distribution", "version", "hooks", "status")
    for i in infos:
        status = "[green]ok[/green]" if not i.error else f"[red]error[/red]: {i.error}"
        table.add_row(i.name, i.distribution + (" (built-in)" if i.builtin else ""), i.version,
                      ", ".join(i.hooks), status)
    console.print(table)


def _registry_command(kind: str, title: str):
    def command(pattern: str = typer.Argument("*", help="fnmatch pattern, e.g. 'arc*'."),
                as_json: bool = typer.Option(False, "--json", help="Print as JSON.")):
        from hier.plugins import get_plugins

        registry = get_plugins().registry(kind)
        entries = [registry.entries[n] for n in registry.names(pattern)]
        if as_json:
            typer.echo(json.dumps([{"name": e.name, "plugin": e.plugin, "help": e.help} for e in entries], indent=1))
            return
        table = Table("name", "plugin", "help", title=title)
        for e in entries:
            table.add_row(e.name, e.plugin, e.help)
        console.print(table)

    command.__doc__ = f"Registered {title} with the plugin that provides each.\n\nExample: hier {kind} --json"
    return command


def add_commands(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("heads")(_registry_command("heads", "heads"))
    app.command("losses")(_registry_command("losses", "losses"))
    app.command("backbones")(_registry_command("backbones", "backbones"))
