"""``hier taxo``: build, prune, show, stats, validate and render taxonomies (torch-free)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from hier.core.errors import InputError
from hier.core.files import check_output_file
from hier.taxo import Taxonomy

app = typer.Typer(help="Build, inspect and export taxonomies. Never needs torch.", no_args_is_help=True)
console = Console()


def _sources(incomplete: str) -> list[str]:
    from hier.plugins import list_taxonomy_sources

    return list_taxonomy_sources(f"{incomplete}*")


@app.command()
def build(
    file: Optional[Path] = typer.Argument(None, help="The source file (CSV/TSV table, EcoTaxa .tsv/.zip)."),
    source: str = typer.Option(..., "--source", "-s", help="wordnet, csv, ecotaxa, or a plugin's source.",
                               autocompletion=_sources),
    out: Path = typer.Option(Path("taxonomy.json"), "--out", "-o", help="Where to write the hier-taxonomy JSON."),
    wnids: Optional[Path] = typer.Option(None, help="wordnet: a file with one wnid per line, or a built-in list: "
                                                    "imagenet1k (the default when --folders is not given)."),
    folders: Optional[Path] = typer.Option(None, help="wordnet: a folder of class folders named by wnid."),
    tree: Optional[str] = typer.Option(None, help="wordnet: which hypernym path each node keeps: longest|shortest|first."),
    no_prune: bool = typer.Option(False, "--no-prune", help="Keep dead nodes (inner nodes with one child)."),
    lineage_column: Optional[str] = typer.Option(None, help="csv: column holding 'a>b>c' lineages."),
    sep: Optional[str] = typer.Option(None, help="csv: lineage separator (default '>'; '/' for ZooScanNet)."),
    rank_columns: Optional[str] = typer.Option(None, help="csv: rank columns root first, e.g. kingdom,phylum,class."),
    parent_column: Optional[str] = typer.Option(None, help="csv: edge list, the parent column."),
    child_column: Optional[str] = typer.Option(None, help="csv: edge list, the child column."),
    label_column: Optional[str] = typer.Option(None, help="csv: the row's dataset label (becomes a node)."),
    status: Optional[str] = typer.Option(None, help="ecotaxa: statuses to keep (default validated)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
):
    """Build a taxonomy from WordNet, a plankton table or an EcoTaxa export.

    Examples:

      hier taxo build --source wordnet                 # ImageNet-1k's WordNet tree -> ./taxonomy.json

      hier taxo build --source wordnet --wnids wnids.txt -o imagenet.json

      hier taxo build --source csv taxonomy.csv --rank-columns kingdom,phylum,class,order,family,genus,species --label-column folder -o plankton.json

      hier taxo build --source ecotaxa export.tsv -o ecotaxa.json
    """
    from hier.plugins import create_taxonomy

    options = {"wnids": wnids, "folders": folders, "tree": tree, "lineage_column": lineage_column, "sep": sep,
               "rank_columns": rank_columns.split(",") if rank_columns else None, "parent_column": parent_column,
               "child_column": child_column, "label_column": label_column,
               "status": status.split(",") if status else None}
    options = {k: v for k, v in options.items() if v is not None}
    if no_prune:
        options["prune"] = False
    if file is not None and not file.exists():
        raise InputError("no such file", path=file)
    check_output_file(out, force=force, inputs=[p for p in (file, wnids, folders) if p is not None])
    taxonomy = create_taxonomy(source, file, **options)
    taxonomy.save(out)
    console.print(f"wrote {out}: {len(taxonomy)} nodes, {len(taxonomy.leaves)} leaves, depth {taxonomy.max_depth}")


@app.command()
def prune(taxonomy: Path = typer.Argument(..., help="A hier-taxonomy JSON."),
          out: Path = typer.Option(..., "--out", "-o", help="Where to write the pruned taxonomy."),
          force: bool = typer.Option(False, "--force", help="Replace an existing output file.")):
    """Remove dead nodes (inner nodes with one child); dataset labels are kept.

    Example: hier taxo prune tree.json -o pruned.json
    """
    from hier.taxo.prune import prune_dead_nodes

    check_output_file(out, force=force, inputs=[taxonomy])
    t = Taxonomy.load(taxonomy)
    pruned = prune_dead_nodes(t)
    pruned.save(out)
    console.print(f"wrote {out}: {len(t)} -> {len(pruned)} nodes ({len(t) - len(pruned)} dead nodes removed)")


def _rich_tree(t: Taxonomy, max_depth: int | None) -> Tree:
    def label(i: int) -> str:
        name = t.names[i].replace("[", r"\[")
        text = f"[bold]{name}[/bold]" if t.children[i] else name
        if t.ids[i] != t.names[i] and len(t.ids[i]) <= 24:
            text += f" [dim]{t.ids[i]}[/dim]"
        if t.children[i]:
            text += f" [cyan]({t.leaves_under[i]} leaves)[/cyan]"
        return text

    root = Tree(label(t.root))
    stack = [(t.root, root)]
    while stack:
        node, branch = stack.pop()
        if max_depth is not None and t.depth[node] >= max_depth:
            continue
        for child in t.children[node]:
            stack.append((child, branch.add(label(child))))
    return root


@app.command()
def show(taxonomy: Path = typer.Argument(..., help="A hier-taxonomy JSON."),
         depth: Optional[int] = typer.Option(None, help="Show levels down to this depth (root = 0)."),
         format: str = typer.Option("tree", "--format", "-f", help="tree, json, csv or dot.")):
    """Print a taxonomy as a tree, or export it as JSON, CSV (id,parent,name,rank) or Graphviz dot.

    Example: hier taxo show plankton.json --depth 3
    """
    from hier.taxo import export

    t = Taxonomy.load(taxonomy)
    if format == "tree":
        console.print(_rich_tree(t, depth))
    elif format == "json":
        typer.echo(json.dumps(t.to_dict(), indent=1, ensure_ascii=False))
    elif format == "csv":
        typer.echo(export.to_csv(t), nl=False)
    elif format == "dot":
        typer.echo(export.to_dot(t), nl=False)
    else:
        raise InputError(f"unknown format {format!r}; use tree, json, csv or dot", where="--format")


@app.command()
def stats(taxonomy: Path = typer.Argument(..., help="A hier-taxonomy JSON."),
          as_json: bool = typer.Option(False, "--json", help="Print the figures as JSON.")):
    """Nodes, leaves, depth, nodes per level, branching and dead nodes.

    Example: hier taxo stats plankton.json --json
    """
    from hier.taxo.stats import taxonomy_stats

    s = taxonomy_stats(Taxonomy.load(taxonomy))
    if as_json:
        typer.echo(json.dumps(s, indent=1))
        return
    table = Table(title=str(taxonomy), show_header=False)
    for key, value in s.items():
        if key not in ("levels", "ranks"):
            table.add_row(key.replace("_", " "), str(value))
    if s["ranks"]:
        table.add_row("ranks", ", ".join(f"{k} {v}" for k, v in s["ranks"].items()))
    console.print(table)
    levels = Table("depth", "nodes", "inner", "leaves", title="per level")
    for level in s["levels"]:
        levels.add_row(*(str(level[k]) for k in ("depth", "nodes", "inner", "leaves")))
    console.print(levels)


@app.command()
def render(taxonomy: Path = typer.Argument(..., help="A hier-taxonomy JSON."),
           out: Path = typer.Option(..., "--out", "-o", help="tree.png or tree.svg"),
           force: bool = typer.Option(False, "--force", help="Replace an existing picture.")):
    """Draw the taxonomy as a dendrogram picture (PNG or SVG).

    Example: hier taxo render plankton.json -o tree.png
    """
    from hier.taxo.render import render as draw

    draw(Taxonomy.load(taxonomy), out, force=force, inputs=[taxonomy])
    console.print(f"wrote {out}")


@app.command()
def validate(taxonomy: Path = typer.Argument(..., help="A hier-taxonomy JSON."),
             dataset: Path = typer.Argument(..., help="Class folders, an EcoTaxa export, or a CSV of paths and labels."),
             as_json: bool = typer.Option(False, "--json", help="Print the report as JSON.")):
    """Check a dataset against a taxonomy: labels missing from it, images per node, the long tail.

    Exits 2 when a label matches no node or several.

    Example: hier taxo validate plankton.json images/
    """
    from hier.data.labels import validation_report
    from hier.data.readers import read_dataset

    t = Taxonomy.load(taxonomy)
    report = validation_report(read_dataset(dataset), t)
    if as_json:
        typer.echo(json.dumps(report, indent=1))
    else:
        table = Table("node", "name", "images", "under it", title=f"{dataset} against {taxonomy}")
        for node_id, n in report["images_per_node"].items():
            i = t.index(node_id)
            table.add_row("  " * int(t.depth[i]) + node_id, t.names[i], str(n["own"]), str(n["under"]))
        console.print(table)
        console.print(f"{report['images']} images, {report['labels']} labels, splits "
                      f"{report['splits']}; class sizes {report['smallest_class']}..{report['largest_class']} "
                      f"(imbalance {report['imbalance']}x, {report['classes_under_10_images']} classes under 10 "
                      f"images); {len(report['leaves_without_images'])} leaves without images")
    problems = [f"{label!r} ({n} images)" for label, n in report["unmatched"].items()]
    problems += [f"{label!r} matches {', '.join(nodes[:3])}" for label, nodes in report["ambiguous"].items()]
    if problems:
        raise InputError(f"{len(problems)} label(s) do not name exactly one node: {'; '.join(problems[:5])}"
                         + (" ..." if len(problems) > 5 else ""), path=dataset)
