"""The `prepbot` command line: run the bot, migrate the database, check the question bank, print the Slack manifest."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from dotenv import load_dotenv

from bot import app, bank, db
from bot.settings import Settings, SettingsError

logger = logging.getLogger("prepbot")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="prepbot", description="Daily interview practice for Slack, Discord and the terminal.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the bot (the console adapter when no platform credentials are set)")
    run.add_argument("--platform", choices=app.PLATFORMS, help="run only this adapter")

    database = commands.add_parser("db", help="database migrations").add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = database.add_parser("upgrade", help="apply migrations (to head by default)")
    upgrade.add_argument("revision", nargs="?", default="head")
    downgrade = database.add_parser("downgrade", help="revert migrations to a revision (base reverts all)")
    downgrade.add_argument("revision")

    bank_commands = commands.add_parser("bank", help="the question bank").add_subparsers(dest="bank_command", required=True, metavar="ACTION")
    validate = bank_commands.add_parser("validate", help="check track files and report every problem")
    validate.add_argument("paths", nargs="*", type=Path, help="track files or folders (default: QUESTION_BANK_DIR)")
    bank_commands.add_parser("list", help="list the tracks and their question counts")

    slack = commands.add_parser("slack", help="Slack app set-up").add_subparsers(dest="slack_command", required=True, metavar="ACTION")
    manifest = slack.add_parser("manifest", help="print the app manifest to paste at api.slack.com/apps")
    mode = manifest.add_mutually_exclusive_group()
    mode.add_argument("--url", help="HTTP mode: the public base URL of prepbot's server, e.g. https://prep.example.org")
    mode.add_argument("--socket-mode", action="store_true", help="Socket Mode: no public URL needed (the default when SLACK_APP_TOKEN is set)")
    manifest.add_argument("--name", default="prepbot", help="the app's and the bot user's name (default: prepbot)")

    discord_commands = commands.add_parser("discord", help="Discord set-up helpers").add_subparsers(
        dest="discord_command", required=True, metavar="ACTION")
    invite = discord_commands.add_parser("invite-url", help="print the link that adds the bot to a server")
    invite.add_argument("--application-id", help="the application id (default: asked of Discord with DISCORD_TOKEN)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    load_dotenv(Path.cwd() / ".env", override=False)
    arguments = build_parser().parse_args(argv)
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "WARNING" if _console_run(arguments) else "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # APScheduler logs every due-post tick at INFO; the tick logs what it actually posts.
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, logging.getLogger().level))
    try:
        settings = Settings.from_env()
        return _run_loop(_dispatch(arguments, settings))
    except (SettingsError, app.StartupError) as error:
        print(f"prepbot: {error}", file=sys.stderr)
        return 2
    except bank.BankError as error:
        print(f"prepbot: {error}\nNothing was changed.", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on uvloop where it is installed (not on Windows), else on asyncio's own loop.

    uvloop's sockets, timers and callbacks are C: 3–7% less CPU per acknowledged Slack event than
    asyncio's selector loop in the ack-path benchmark (BENCHMARKS.md), with the same asyncio API.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def _console_run(arguments: argparse.Namespace) -> bool:
    return arguments.command == "run" and arguments.platform in (None, "console") and not (
        os.environ.get("SLACK_BOT_TOKEN") or os.environ.get("DISCORD_TOKEN"))


async def _dispatch(arguments: argparse.Namespace, settings: Settings) -> int:
    match arguments.command:
        case "run":
            platforms = app.choose_platforms(settings, arguments.platform)
            logger.info("starting prepbot with %s", ", ".join(platforms))
            return await _run_until_terminated(app.run(settings, platforms, sys.stdin, sys.stdout))
        case "db":
            engine = db.create_engine(settings.database_url)
            try:
                if arguments.db_command == "upgrade":
                    await db.upgrade(engine, arguments.revision)
                else:
                    await db.downgrade(engine, arguments.revision)
            finally:
                await engine.dispose()
            print(f"database {arguments.db_command}d to {arguments.revision}")
            return 0
        case "bank" if arguments.bank_command == "validate":
            paths = arguments.paths or [settings.question_bank_dir]
            problems = bank.validate(paths)
            for problem in problems:
                print(problem)
            if problems:
                print(f"{len(problems)} problem(s) found.", file=sys.stderr)
                return 1
            print(f"OK: {', '.join(str(p) for p in paths)} is valid.")
            return 0
        case "discord":
            return await _invite_url(arguments, settings)
        case "bank":
            for track in bank.load_bank(settings.question_bank_dir).values():
                print(f"{track.id}: {track.title} — {len(track.questions)} questions in {len(track.categories)} categories")
                for category in track.categories:
                    count = sum(1 for q in track.questions if q.category == category.id)
                    print(f"  {category.id}: {category.name} ({count} questions, {len(category.probes)} probes)")
            return 0
        case "slack":
            return _print_slack_manifest(arguments, settings)
    raise AssertionError(arguments.command)


async def _run_until_terminated(serving: Coroutine[Any, Any, None]) -> int:
    """Serve until done; SIGTERM (what `docker stop` and process managers send) stops it cleanly, exit 0."""
    task = asyncio.ensure_future(serving)
    loop = asyncio.get_running_loop()
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        logger.info("SIGTERM: stopping")
        task.cancel()

    try:
        loop.add_signal_handler(signal.SIGTERM, terminate)
        handling = True
    except (RuntimeError, ValueError, NotImplementedError):
        # Not the main thread (e.g. embedded: asyncio raises RuntimeError, uvloop ValueError), or no signals here.
        handling = False
    try:
        await task
    except asyncio.CancelledError:
        if not terminated:
            raise
    finally:
        if handling:
            loop.remove_signal_handler(signal.SIGTERM)
    return 0


def _print_slack_manifest(arguments: argparse.Namespace, settings: Settings) -> int:
    socket_mode = arguments.socket_mode or (arguments.url is None and settings.slack_app_token is not None)
    if not socket_mode and not arguments.url:
        print("prepbot: say how Slack reaches prepbot: --url https://your.host (HTTP mode, Slack posts to "
              "<url>/slack/events) or --socket-mode (no public URL; needs an app-level token).", file=sys.stderr)
        return 2
    if arguments.url and not arguments.url.startswith("https://"):
        print(f"prepbot: --url must be a full https:// URL such as https://prep.example.org (Slack only calls HTTPS), "
              f"got {arguments.url!r}.", file=sys.stderr)
        return 2
    print(json.dumps(app.slack_manifest(socket_mode, arguments.url, name=arguments.name), indent=2))
    return 0


async def _invite_url(arguments: argparse.Namespace, settings: Settings) -> int:
    """`prepbot discord invite-url`: the OAuth2 link with the bot and applications.commands scopes."""
    url, explanation = await app.discord_invite(settings, arguments.application_id)
    print(url)
    print(explanation, file=sys.stderr)
    return 0
