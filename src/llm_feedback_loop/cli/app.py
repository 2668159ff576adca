"""`llmfl`: the command line of llm-feedback-loop.

llmfl serve                      # the feedback service on 127.0.0.1:3000
llmfl export dpo --out exports/pairs.jsonl --strategy best-vs-rest --test-size 0.1
llmfl import feedback.jsonl      # the original project's data (JSON, JSONL, mongoexport)
llmfl train sft --data exports/sft.jsonl --lora   # then: llmfl train dpo --model <that version> ...
llmfl db upgrade                 # create or migrate the database (every command does this first)
llmfl loop --rounds 2            # rounds of generate → feedback → train → evaluate → promote
llmfl demo                       # the loop offline on a CPU, with a simulated annotator
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from llm_feedback_loop import __version__
from llm_feedback_loop.cli.accounts import keys_app, users_app
from llm_feedback_loop.cli.common import command_database, console, fail, load_settings, progress, with_database
from llm_feedback_loop.cli.eval import eval_command
from llm_feedback_loop.cli.loop import demo_command, loop_command
from llm_feedback_loop.cli.train import runs_app, train_command

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

app = typer.Typer(help="Close the loop between human feedback on LLM answers and training.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
model_app = typer.Typer(help="Build models for tests and experiments.", no_args_is_help=True)
app.add_typer(model_app, name="model")
models_app = typer.Typer(help="The model registry: versions, and which one is active.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(runs_app, name="runs")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("loop")(loop_command)
app.command("demo")(demo_command)


@app.callback()
def one_database_per_command(ctx: typer.Context) -> None:
    # Every command shares one database context (opened on first use), closed when the command ends.
    ctx.with_resource(command_database())


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT or 3000).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the feedback service (API docs at /docs). Creates and migrates the database on start."""
    import uvicorn

    from llm_feedback_loop.api.app import create_app
    from llm_feedback_loop.auth.accounts import ensure_first_admin
    from llm_feedback_loop.storage.engine import create_session_factory

    settings = load_settings()
    host, port = host or settings.host, port or settings.port
    check_bind(host, settings.auth_required, settings.trusted_hosts)

    async def first_admin(engine: AsyncEngine) -> str | None:
        async with create_session_factory(engine)() as session:
            token = await ensure_first_admin(session)
            await session.commit()
            return token

    # Also reports a database that cannot be opened here, before uvicorn starts.
    token = with_database(first_admin) if settings.auth_required else None
    if token is not None:
        link_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        console.print(
            "\n[bold]First start:[/bold] created an admin user. Sign in once with this link (valid 24 h):\n"
            f"    http://{link_host}:{port}/login?token={token}\n"
            "Then set a password (llmfl users passwd admin), add annotators (llmfl users add NAME --role annotator"
            " --password) and keys for scripts (llmfl keys create --role annotator --user NAME).\n",
            highlight=False,
            soft_wrap=True,
        )
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
    )


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, auth_required: bool, trusted_hosts: list[str]) -> None:
    """Refuse to open a service without authentication to the network; say what else a public bind needs."""
    if is_loopback(host):
        return
    if not auth_required:
        raise fail(
            f"refusing to listen on {host} with AUTH_REQUIRED=false: anyone who can reach it would be an admin. "
            "Keep authentication on (unset AUTH_REQUIRED) and give clients keys: llmfl keys create --role annotator"
        )
    if "*" not in trusted_hosts:
        console.print(
            f"listening on {host}: requests must name one of TRUSTED_HOSTS ({', '.join(trusted_hosts)}) as their Host;"
            " add the names clients use, e.g. TRUSTED_HOSTS='[\"feedback.example.org\"]'",
            highlight=False,
        )


@app.command("serve-model")
def serve_model(
    model: Annotated[
        str | None,
        typer.Option(help="A registered version (id or name), a hub id or a folder. Default: the active version."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (the original inference server's was 5005).")] = 5005,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    engine: Annotated[str, typer.Option(help="transformers (in-process, continuous batching) | vllm")] = "transformers",
    watch_registry: Annotated[float, typer.Option(help="Seconds between checks for a newly activated version.")] = 5.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the OpenAI-compatible inference server (and the original POST /generate)."""
    import uvicorn

    from llm_feedback_loop.api.model_server import create_serving_app
    from llm_feedback_loop.models.loader import ModelLoadError

    if engine == "vllm":
        raise fail(
            "vLLM runs as its own server: start it with `vllm serve MODEL --port 8000` on a GPU machine, then point "
            "the chat provider at it (CHAT_PROVIDER_URL=http://HOST:8000/v1). The in-process engine is `transformers`."
        )
    if engine != "transformers":
        raise fail(f"unknown engine {engine!r}; choose transformers or vllm")
    from llm_feedback_loop.serving.slot import choose_model, start_model

    settings = load_settings()
    check_bind(host, settings.auth_required, settings.trusted_hosts)

    async def pick(database: AsyncEngine) -> Any:
        return await choose_model(database, model, settings.base_model)

    choice = with_database(pick)
    try:  # loaded here, so that a model that cannot be loaded is reported plainly, not by a traceback
        served = start_model(choice, device=device)
    except ModelLoadError as error:
        raise fail(str(error)) from None
    uvicorn.run(
        create_serving_app(settings, model=model, watch_registry_s=watch_registry, device=device, preloaded=served),
        host=host,
        port=port,
        log_level=log_level,
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create the database or bring its schema up to date."""
    from llm_feedback_loop.storage.engine import describe_database
    from llm_feedback_loop.storage.migrate import current_revision

    revision = with_database(current_revision)
    console.print(f"database at revision {revision}: {describe_database(load_settings().database_url)}")


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--{name} {value!r} is not an ISO 8601 date or time, e.g. 2026-01-31 or 2026-01-31T12:00") from None


@app.command("export")
def export_command(
    kind: Annotated[str, typer.Argument(help="sft | dpo | reward | kto")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSONL file (a folder with --as-dataset).")],
    format: Annotated[str, typer.Option(help="standard (text) | conversational (messages).")] = "standard",
    strategy: Annotated[str, typer.Option(help="all-pairs | best-vs-rest | best-vs-random-lower.")] = "all-pairs",
    dedupe: Annotated[bool, typer.Option(help="Emit each distinct row once.")] = True,
    include_comparisons: Annotated[bool, typer.Option(help="sft: add each comparison's best answer.")] = False,
    test_size: Annotated[float, typer.Option(help="Share of prompts held out (split by prompt hash).")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the split and of random pairing.")] = 0,
    since: Annotated[str | None, typer.Option(help="Only feedback created at or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Only feedback created before (ISO 8601).")] = None,
    annotator: Annotated[str | None, typer.Option(help="Only feedback by this annotator.")] = None,
    model: Annotated[str | None, typer.Option(help="Only feedback on this model's answers.")] = None,
    as_dataset: Annotated[bool, typer.Option(help="Write a Hugging Face datasets folder (save_to_disk).")] = False,
) -> None:
    """Export stored feedback as a TRL dataset, with a manifest (counts, options, sha256 of each file)."""
    from llm_feedback_loop.feedback.filters import FeedbackFilter
    from llm_feedback_loop.training_data.export import export_to_datasets_folder, export_to_jsonl, manifest_path
    from llm_feedback_loop.training_data.options import ExportOptions

    try:
        options = ExportOptions(kind, format, strategy, dedupe, include_comparisons, test_size, seed)  # type: ignore[arg-type]
    except ValueError as error:
        raise fail(str(error)) from None
    where = FeedbackFilter(parse_time(since, "since"), parse_time(until, "until"), annotator, model)

    async def run(engine: AsyncEngine) -> dict[str, Any]:
        with progress() as bar:
            task = bar.add_task(f"exporting {kind}", total=None)
            writer = export_to_datasets_folder if as_dataset else export_to_jsonl
            return await writer(engine, options, where, out, lambda rows: bar.advance(task, rows))

    manifest = with_database(run)
    counts = manifest["counts"]
    console.print(
        f"wrote {counts['rows']} {kind} rows ({counts['rows_per_split']}) from {counts['rows_per_source']};"
        f" {counts['ties_dropped']} ties dropped"
    )
    if as_dataset:
        console.print(f"  dataset folder: {out}\n  manifest: {out / 'manifest.json'}")
    else:
        for name in manifest["files"]:
            console.print(f"  {out.parent / name}")
        console.print(f"  manifest: {manifest_path(out)}")


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="JSON, JSON Lines or mongoexport output of the original project.")],
    skip_invalid: Annotated[bool, typer.Option(help="Import the good documents and report the bad ones.")] = False,
) -> None:
    """Import feedback in the original project's formats. All or nothing unless --skip-invalid."""
    from llm_feedback_loop.importing.load import ImportReport, check_documents, load_documents
    from llm_feedback_loop.importing.original import parse_text

    if not file.is_file():
        raise fail(f"{file} does not exist or is not a file")
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise fail(f"{file} is not UTF-8 text: {error}") from None
    checked = check_documents(parse_text(text))
    for error in checked.errors[:50]:
        console.print(f"[yellow]{file}:{error.line}:[/yellow] {error.message}")
    if len(checked.errors) > 50:
        console.print(f"... and {len(checked.errors) - 50} more bad documents")
    if checked.errors and not skip_invalid:
        raise fail(
            f"{len(checked.errors)} bad document(s) in {file}; nothing imported. "
            "Fix them, or pass --skip-invalid to import the rest."
        )
    if checked.total_imported == 0:
        raise fail(f"{file} holds no feedback documents; nothing imported")

    async def run(engine: AsyncEngine) -> ImportReport:
        with progress() as bar:
            task = bar.add_task(f"importing {file.name}", total=checked.total_imported)
            return await load_documents(engine, parse_text(text), lambda: bar.advance(task))

    report = with_database(run)
    skipped = f", skipped {len(report.errors)} bad document(s)" if report.errors else ""
    console.print(
        f"imported {report.imported['rating']} rating(s) and {report.imported['comparison']} comparison(s){skipped}"
    )


@model_app.command("init-tiny")
def model_init_tiny(
    folder: Annotated[Path, typer.Argument(help="Folder to write the model and tokenizer to.")],
    hidden_size: Annotated[int, typer.Option(help="Hidden size.")] = 128,
    layers: Annotated[int, typer.Option(help="Number of layers.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the random weights.")] = 0,
) -> None:
    """Build a tiny random-weight Llama with a locally trained tokenizer and a chat template (seconds)."""
    from llm_feedback_loop.models.tiny import build_tiny_model

    if folder.exists() and any(folder.iterdir()):
        raise fail(f"{folder} exists and is not empty; choose a new folder")
    build_tiny_model(folder, hidden_size=hidden_size, layers=layers, seed=seed)
    console.print(f"tiny model written to {folder}; use it with BASE_MODEL={folder} or `llmfl models add {folder}`")


def print_versions(versions: list[Any]) -> None:
    from rich.table import Table

    from llm_feedback_loop.models.registry import describe

    table = Table("id", "name", "status", "method", "parent", "source", "created")
    for version in versions:
        row = describe(version)
        table.add_row(
            str(row["id"]),
            row["name"],
            row["status"],
            row["method"],
            str(row["parent_id"] or ""),
            row["source"],
            row["created_at"].strftime("%Y-%m-%d %H:%M"),
        )
    Console().print(table)


@models_app.command("list")
def models_list() -> None:
    """List the registered model versions."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_feedback_loop.models.registry import list_versions

    async def run(engine: AsyncEngine) -> list[Any]:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            return await list_versions(session)

    versions = with_database(run)
    if not versions:
        console.print("no model versions yet: the base model is registered on first use, or `llmfl models add`")
        return
    print_versions(versions)


@models_app.command("add")
def models_add(
    source: Annotated[str, typer.Argument(help="A hub id, a local model folder, a .gguf file or a LoRA adapter.")],
    name: Annotated[str | None, typer.Option(help="Version name (default: from the source).")] = None,
    parent: Annotated[str | None, typer.Option(help="Parent version (id or name).")] = None,
    method: Annotated[str, typer.Option(help="How it was made: base, sft, dpo, ... or manual.")] = "manual",
    description: Annotated[str | None, typer.Option(help="A note about this version.")] = None,
    activate: Annotated[bool, typer.Option(help="Make it the active version now.")] = False,
) -> None:
    """Register a model version (a candidate unless --activate)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_feedback_loop.models.registry import RegistryError, add_version, find_version

    async def run(engine: AsyncEngine) -> Any:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            parent_version = None
            if parent is not None:
                parent_version = await find_version(session, parent)
                if parent_version is None:
                    raise RegistryError(f"no parent version {parent!r}; `llmfl models list` shows them")
            return await add_version(
                session,
                source,
                name=name,
                method=method,
                parent=parent_version,
                description=description,
                activate=activate,
            )

    try:
        version = with_database(run)
    except RegistryError as error:
        raise fail(str(error)) from None
    console.print(f"registered {version.name} (id {version.id}, {version.status})")


@models_app.command("activate")
def models_activate(ref: Annotated[str, typer.Argument(help="Version id or name.")]) -> None:
    """Make a version the active one: chat and the inference server use it."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_feedback_loop.models.registry import RegistryError, activate_version

    async def run(engine: AsyncEngine) -> Any:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            return await activate_version(session, ref)

    try:
        version = with_database(run)
    except RegistryError as error:
        raise fail(str(error)) from None
    console.print(f"active model version: {version.name} (id {version.id})")


@models_app.command("promote")
def models_promote(
    ref: Annotated[str, typer.Argument(help="The candidate version (id or name).")],
    auto: Annotated[bool, typer.Option(help="Promote only if the rule holds (else exit code 3).")] = False,
    min_win_rate: Annotated[float, typer.Option(help="--auto: least win rate against the parent.")] = 0.55,
    max_drop: Annotated[float, typer.Option(help="--auto: most points any shared metric may fall.")] = 1.0,
) -> None:
    """Make a candidate the active version (chat and the inference server switch to it); with --auto, only
    if its evaluations beat its parent's by the rule."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from llm_feedback_loop.models.promotion import Decision, decide
    from llm_feedback_loop.models.registry import RegistryError, activate_version, find_version
    from llm_feedback_loop.storage.tables import ModelVersion

    async def run(engine: AsyncEngine) -> tuple[Any, Decision]:
        async with AsyncSession(engine, expire_on_commit=False) as session:
            version = await find_version(session, ref)
            if version is None:
                raise RegistryError(f"no model version {ref!r}; `llmfl models list` shows them")
            parent = await session.get(ModelVersion, version.parent_id) if version.parent_id else None
            decision = decide(version.extra, parent.extra if parent else None, min_win_rate, max_drop)
            if decision.promote or not auto:
                await activate_version(session, version.id)
            return version, decision

    try:
        version, decision = with_database(run)
    except RegistryError as error:
        raise fail(str(error)) from None
    if auto and not decision.promote:
        console.print(f"[yellow]not promoted[/yellow]: {version.name}: " + "; ".join(decision.reasons))
        raise typer.Exit(code=3)
    console.print(f"promoted {version.name} (id {version.id}): it is the active version now")


def main() -> None:
    app()
