import typer

app = typer.Typer(help="Datasets: the synthetic plankton benchmark.", no_args_is_help=True)
