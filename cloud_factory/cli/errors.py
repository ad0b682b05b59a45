"""The CLI's error boundary: a mistake or an unreachable server is one line on stderr, never a traceback.

Every command runs inside `run`: an exception that escapes a command is named in one line (what is
wrong, and what to do about it) and the process exits 1; `--debug` (or `CF_DEBUG=1`) lets the
traceback through for a bug report. The exception types of temporalio, SQLAlchemy and
confluent-kafka are imported only once something has failed, so a command that works pays nothing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

__all__ = ["debug_enabled", "explain", "run"]


def debug_enabled(argv: list[str]) -> bool:
    return "--debug" in argv or os.environ.get("CF_DEBUG", "") not in ("", "0")


def _temporal_target() -> str:
    from core.settings import get_settings

    return get_settings().temporal_target


def _explain_temporal(exc: BaseException) -> str | None:
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
                f"({type(exc.orig or exc).__name__}); is the stack up? (`cloud-factory stack status`)")
    return None


def _explain_kafka(exc: BaseException) -> str | None:
    from confluent_kafka import KafkaException

    if isinstance(exc, KafkaException):
        from core.settings import get_settings

        return f"Kafka at {get_settings().bootstrap_servers}: {exc.args[0] if exc.args else exc}"
    return None


def explain(exc: BaseException) -> str:
    """The one line a person sees for `exc`."""
    if isinstance(exc, (ValueError, LookupError, PermissionError, FileNotFoundError, TimeoutError)):
        return str(exc) or type(exc).__name__
    for explainer in (_explain_temporal, _explain_database, _explain_kafka):
        try:
            line = explainer(exc)
        except ImportError:  # an optional dependency that is not installed raised nothing of its kind
            line = None
        if line:
            return line
    return f"{type(exc).__name__}: {exc} (run again with --debug for the traceback)"


def run(app: Callable[[], object], argv: list[str] | None = None) -> None:
    """Run the Typer app; anything that escapes a command becomes one line and exit 1."""
    argv = sys.argv[1:] if argv is None else argv
    debug = debug_enabled(argv)
    if "--debug" in sys.argv:
        sys.argv.remove("--debug")
    try:
        app()
    except SystemExit as done:
        # Leave without the interpreter's finalisation: the Temporal client's runtime threads can
        # still hold the GIL machinery there and abort the process (exit -6) after a command that
        # worked. Output is flushed first; nothing else is left to clean up in a CLI process.
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the boundary: every failure is named, none is a traceback
        if debug:
            raise
        print(f"error: {explain(exc)}", file=sys.stderr, flush=True)
        # Leave at once: a client's daemon threads (Temporal's runtime, librdkafka) may still write to
        # stderr, and a loaded machine can then abort the interpreter's shutdown on the stream lock.
        os._exit(1)
