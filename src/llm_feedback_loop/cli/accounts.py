"""`llmfl users ...` and `llmfl keys ...`: accounts from the command line (the admin's, on the service's machine).

llmfl users add alice --role annotator --password      # asks for the password
llmfl users login-link alice                           # a one-time sign-in link, printed on the last line
llmfl keys create --role annotator --user alice        # the new key alone on the last line of stdout
llmfl keys list
llmfl keys revoke abcd2345
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated, Any

import typer

from llm_feedback_loop.cli.common import console, fail, load_settings, with_database

users_app = typer.Typer(help="Users who sign in to the web pages or own API keys.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: `Authorization: Bearer KEY` for scripts, the loop, the openai SDK.")
keys_app.info.no_args_is_help = True


def in_session(work: Any) -> Any:
    """Run `work(session)` in one transaction; an AccountError ends the command with its message."""
    from llm_feedback_loop.auth.accounts import AccountError
    from llm_feedback_loop.storage import database

    try:
        return database.in_session(with_database, work, commit=True)
    except AccountError as error:
        raise fail(str(error)) from None


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


def base_url() -> str:
    settings = load_settings()
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.port}"


@users_app.command("list")
def users_list() -> None:
    """Every user with role and whether it has a password."""
    from llm_feedback_loop.auth.accounts import list_users

    for user in in_session(list_users):
        state = "disabled" if user.disabled else ("password" if user.password_hash else "no password")
        typer.echo(f"{user.name}\t{user.role}\t{state}")


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Sign-in name (letters, digits, . _ @ -).")],
    role: Annotated[str, typer.Option(help="admin | annotator | viewer")],
    password: Annotated[bool, typer.Option("--password", help="Ask for a password (else: login links, keys).")] = False,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Create a user."""
    from llm_feedback_loop.auth.accounts import create_user

    secret = read_password(password_stdin) if (password or password_stdin) else None

    async def work(session: Any) -> Any:
        return await create_user(session, name, role, secret)

    user = in_session(work)
    console.print(f"created {user.role} {user.name}" + ("" if secret else "; sign in with `llmfl users login-link`"))


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="The user.")],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Set a user's password (their web sessions end)."""
    from llm_feedback_loop.auth.accounts import get_user, set_password

    secret = read_password(password_stdin)

    async def work(session: Any) -> None:
        await set_password(session, await get_user(session, name), secret)

    in_session(work)
    console.print(f"password of {name} set")


def _set_disabled(name: str, disabled: bool) -> None:
    from llm_feedback_loop.auth.accounts import get_user, set_disabled

    async def work(session: Any) -> None:
        await set_disabled(session, await get_user(session, name), disabled)

    in_session(work)
    console.print(f"{name} {'disabled: its sessions ended and its keys stop working' if disabled else 'enabled'}")


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Disable a user: no sign-in, and its keys stop working."""
    _set_disabled(name, True)


@users_app.command("enable")
def users_enable(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Enable a disabled user again."""
    _set_disabled(name, False)


@users_app.command("login-link")
def users_login_link(
    name: Annotated[str, typer.Argument(help="The user.")],
    url: Annotated[str | None, typer.Option(help="The service's address (default from HOST and PORT).")] = None,
    hours: Annotated[float, typer.Option(min=0.01, max=24 * 30, help="How long the link stays valid.")] = 24.0,
) -> None:
    """A one-time sign-in link for a user (printed alone on the last line)."""
    from llm_feedback_loop.auth.accounts import create_login_link, get_user

    async def work(session: Any) -> str:
        return await create_login_link(session, await get_user(session, name), hours)

    token = in_session(work)
    console.print(f"a one-time sign-in link for {name}, valid {hours:g} h:")
    typer.echo(f"{(url or base_url()).rstrip('/')}/login?token={token}")


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="admin | annotator | viewer")],
    user: Annotated[
        str | None, typer.Option(help="Whose key (rows it writes are theirs). Default: a user named after the role.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A label, e.g. what uses the key.")] = None,
    expires_days: Annotated[
        float | None, typer.Option(min=0.001, max=3650, help="Expire after this many days.")
    ] = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line of standard output."""
    from llm_feedback_loop.auth.accounts import key_for_role
    from llm_feedback_loop.storage.tables import utc_now

    expires_at = utc_now() + timedelta(days=expires_days) if expires_days else None

    async def work(session: Any) -> Any:
        return await key_for_role(session, role, user, name, expires_at)

    key, full, owner = in_session(work)
    console.print(f"API key {key.prefix} for {owner.name} ({key.role}); it is shown once: keep it now")
    typer.echo(full)


@keys_app.command("list")
def keys_list() -> None:
    """Every key: prefix, user, role, state, last use (never the secret)."""
    from llm_feedback_loop.auth.accounts import key_state, list_keys

    for key, owner in in_session(list_keys):
        last = key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "never used"
        typer.echo(f"{key.prefix}\t{owner}\t{key.role}\t{key_state(key)}\t{last}\t{key.name or ''}")


@keys_app.command("revoke")
def keys_revoke(prefix: Annotated[str, typer.Argument(help="The key's prefix (llmfl keys list), or the key.")]) -> None:
    """Revoke a key (a running service stops accepting it within 10 seconds)."""
    from llm_feedback_loop.auth.accounts import revoke_key

    async def work(session: Any) -> Any:
        return await revoke_key(session, prefix)

    key = in_session(work)
    console.print(f"revoked {key.prefix}")
