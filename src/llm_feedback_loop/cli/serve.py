"""`llmfl serve` and `llmfl serve-model`: the feedback service and the inference server.

llmfl serve                      # the feedback service on 127.0.0.1:3000 (API docs at /docs)
llmfl serve-model --port 5005    # the OpenAI-compatible inference server for the active version
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_feedback_loop.cli.common import console, fail, load_settings, release_database, with_database

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default HOST or 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default PORT or 3000).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the feedback service (API docs at /docs). Creates and migrates the database on start."""
    import uvicorn

    from llm_feedback_loop.api.app import create_app
    from llm_feedback_loop.auth.accounts import ensure_first_admin
    from llm_feedback_loop.storage.database import in_session

    settings = load_settings()
    host, port = host or settings.host, port or settings.port
    check_bind(host, settings.auth_required, settings.trusted_hosts)

    # Also reports a database that cannot be opened here, before uvicorn starts.
    token = in_session(with_database, ensure_first_admin, commit=True) if settings.auth_required else None
    release_database()  # the service opens its own
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


def serve_model(
    model: Annotated[
        str | None,
        typer.Option(help="A registered version (id or name), a hub id or a folder. Default: the active version."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (the original inference server's was 5005).")] = 5005,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda | cuda:N")] = "auto",
    engine: Annotated[
        str,
        typer.Option(help="transformers (in-process, continuous batching) | vllm (a vLLM server it starts: GPUs)"),
    ] = "transformers",
    watch_registry: Annotated[float, typer.Option(help="Seconds between checks for a newly activated version.")] = 5.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Start the OpenAI-compatible inference server (and the original POST /generate)."""
    import uvicorn

    from llm_feedback_loop.api.model_server import create_serving_app
    from llm_feedback_loop.models.loader import ModelLoadError

    if engine not in ("transformers", "vllm"):
        raise fail(f"unknown engine {engine!r}; choose transformers or vllm")
    if engine == "vllm":
        from llm_feedback_loop.serving.vllm import INSTALL_HINT, vllm_installed

        if not vllm_installed():
            raise fail(INSTALL_HINT)
    from llm_feedback_loop.serving.engine import on_fresh_thread
    from llm_feedback_loop.serving.slot import choose_model, start_model

    settings = load_settings()
    check_bind(host, settings.auth_required, settings.trusted_hosts)

    async def pick(database: AsyncEngine) -> Any:
        return await choose_model(database, model, settings.base_model)

    choice = with_database(pick)
    release_database()  # the server opens its own
    try:  # loaded here, so that a model that cannot be loaded is reported plainly, not by a traceback
        # On a thread that ends: the main thread then never runs torch (see serving.engine.on_fresh_thread).
        served = on_fresh_thread(start_model, choice, device, "auto", engine, settings.model_packed_linear)
    except ModelLoadError as error:
        raise fail(str(error)) from None
    uvicorn.run(
        create_serving_app(
            settings, model=model, watch_registry_s=watch_registry, device=device, preloaded=served, engine=engine
        ),
        host=host,
        port=port,
        log_level=log_level,
    )
