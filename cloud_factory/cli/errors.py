"""The CLI's error boundary: a mistake or an unreachable server is one line on stderr, never a traceback.

Every command runs inside `run`: an exception that escapes a command is named in one line (what is
wrong, and what to do about it) and the process exits 1; a mistake on the command line (click's usage
errors) is one `error:` line too, naming the command's `--help`, exit 2. `--debug` (or `CF_DEBUG=1`)
lets the traceback through for a bug report. The exception types of temporalio, SQLAlchemy and
confluent-kafka are imported only once something has failed, so a command that works pays nothing.

A command that needs Kafka calls `require_kafka` first: with no broker accepting connections it
fails in about a second, instead of librdkafka retrying (and logging each retry on stderr) until its
own timeouts.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

__all__ = ["Unreachable", "debug_enabled", "explain", "require_kafka", "run"]

_STACK_HINT = "is the stack up? (`cloud-factory stack status`)"


class Unreachable(ConnectionError):
    """A server a command needs accepts no connection; the message names it and what to do."""


def require_kafka(timeout_s: float = 2.0, *, meanwhile: str = "") -> None:
    """Raise `Unreachable` unless a bootstrap address of the settings accepts a TCP connection;
    `meanwhile` says what stays as it is (e.g. records waiting in the spool)."""
    from core.settings import get_settings
    from messaging.outbox.delivery import broker_reachable

    bootstrap = get_settings().bootstrap_servers
    if not broker_reachable(bootstrap, timeout_s=timeout_s):
        raise Unreachable(f"Kafka is not reachable at {bootstrap}{f' ({meanwhile})' if meanwhile else ''}; "
                          "start it with `cloud-factory stack up`")


def debug_enabled(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("CF_DEBUG", "") not in ("", "0")


def _temporal_target() -> str:
    from core.settings import get_settings

    return get_settings().temporal_target


def _explain_temporal(exc: BaseException) -> str | None:
    import asyncio

    from temporalio.client import WorkflowFailureError, WorkflowQueryFailedError
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, RPCError):
        if exc.status is RPCStatusCode.NOT_FOUND:
            return f"{exc.message}: no such workflow, or it has already finished (see `order show`)"
        if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
            return f"Temporal at {_temporal_target()} did not answer ({exc.message}); is the stack up? " \
                   "(`cloud-factory stack status`)"
        return f"Temporal refused: {exc.message}"
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)) and "connect" in str(exc).lower():
        return f"Temporal at {_temporal_target()} did not answer in time; {_STACK_HINT}"
    if isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect"):
        return f"Temporal is not reachable at {_temporal_target()}; start it with `cloud-factory stack up`"
    if isinstance(exc, WorkflowAlreadyStartedError):
        return f"workflow {exc.workflow_id} already exists: an order is placed once"
    if isinstance(exc, WorkflowQueryFailedError):
        return f"the saga could not answer: {exc}"
    if isinstance(exc, WorkflowFailureError):
        return f"the saga failed: {exc.cause or exc}"
    return None


def _explain_database(exc: BaseException) -> str | None:
    from sqlalchemy import exc as sa
    from sqlalchemy.engine import make_url

    if isinstance(exc, (sa.OperationalError, sa.InterfaceError)):
        from core.settings import get_settings

        url = make_url(get_settings().dsn)
        return (f"PostgreSQL is not reachable at {url.host}:{url.port} "
                f"({type(exc.orig or exc).__name__}); {_STACK_HINT}")
    return None


def _explain_kafka(exc: BaseException) -> str | None:
    from confluent_kafka import KafkaError, KafkaException

    if not isinstance(exc, KafkaException):
        return None
    from core.settings import get_settings

    where = f"Kafka at {get_settings().bootstrap_servers}"
    error = exc.args[0] if exc.args else None
    if not isinstance(error, KafkaError):
        return f"{where}: {exc}"
    if error.code() in (KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN,
                        KafkaError._MSG_TIMED_OUT, KafkaError._RESOLVE, KafkaError.NETWORK_EXCEPTION):
        return f"{where} did not answer ({error.str()}); {_STACK_HINT}"
    if error.code() in (KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC,
                        KafkaError.UNKNOWN_TOPIC_OR_PART):
        return f"{where} has no such topic or partition ({error.str()})"
    return f"{where}: {error.str()}"


def explain(exc: BaseException) -> str:
    """The one line a person sees for `exc`."""
    if isinstance(exc, (Unreachable, ValueError, LookupError, PermissionError, FileNotFoundError,
                        TimeoutError)):
        return str(exc) or type(exc).__name__
    for explainer in (_explain_temporal, _explain_database, _explain_kafka):
        try:
            line = explainer(exc)
        except ImportError:  # an optional dependency that is not installed raised nothing of its kind
            line = None
        if line:
            return line
    return f"{type(exc).__name__}: {exc} (run again with --debug for the traceback)"


def _click_error_line(exc: Exception) -> str:
    """Click's usage error (`Usage:`, `Try …`, `Error: …` on three lines) as one line."""
    # Typer's coercion words a bad choice as pydantic does ("Value error, 'x' is not one of …").
    message = exc.format_message().replace("Value error, ", "").rstrip(".")  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    return f"{message} (see `{ctx.command_path} --help`)" if ctx is not None else message


def _is_click_error(exc: Exception) -> bool:
    """Click's own exceptions (Typer vendors click, so they are recognised by their shape)."""
    return isinstance(getattr(exc, "exit_code", None), int) and hasattr(exc, "format_message")


def run(app: Callable[..., object], argv: list[str] | None = None) -> None:
    """Run the Typer app; anything that escapes a command becomes one line and exit 1 (a usage error:
    exit 2)."""
    import typer

    argv = sys.argv[1:] if argv is None else argv
    debug = debug_enabled(argv)
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    try:
        # Not standalone: click's own errors come back here, so a usage error is one line too.
        code = app(standalone_mode=False)
    except SystemExit as done:
        _leave(done.code if isinstance(done.code, int) else (0 if done.code is None else 1))
    except KeyboardInterrupt:
        raise
    except typer.Abort:
        print("error: aborted", file=sys.stderr, flush=True)
        _leave(1)
    except Exception as exc:  # noqa: BLE001 - the boundary: every failure is named, none is a traceback
        if _is_click_error(exc):
            if type(exc).__name__ == "NoArgsIsHelpError":  # a group without its command: help answers
                exc.show()  # type: ignore[attr-defined]
            else:
                print(f"error: {_click_error_line(exc)}", file=sys.stderr, flush=True)
            _leave(exc.exit_code)  # type: ignore[attr-defined]
        if debug:
            raise
        print(f"error: {explain(exc)}", file=sys.stderr, flush=True)
        _leave(1)
    # Not standalone, click returns an `Exit`'s code (and a command's return value, always None here).
    _leave(code if isinstance(code, int) else 0)


def _leave(code: int) -> None:
    """Exit without the interpreter's finalisation, output flushed: a client's daemon threads
    (Temporal's runtime, librdkafka) may still run there, and have aborted the process (exit -6,
    `PyGILState_Release`) after a command that worked, or on the stream lock after one that failed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
