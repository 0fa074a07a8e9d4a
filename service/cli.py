"""The ``pipetrace`` command."""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import click
import waitress
from flask import Flask

from instrumentation.config import ConfigError
from service.alerts_cli import alerts
from service.app import close_app, create_app
from service.backup_cli import backup_command
from service.checked_settings import load_settings
from service.cli_group import OneLineErrors
from service.config_cli import config
from service.otlp_grpc import ListenError, OtlpGrpcServer
from service.pipelines_cli import pipelines
from service.run_cli import run_command
from service.settings import is_loopback
from service.spool_cli import spool
from service.state import state


class _AppSlot:
    """The WSGI app the server calls, set once built. Waitress serves nothing before ``run()``."""

    app: Flask | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        assert self.app is not None, "requests are served only after the app is set"
        return self.app(environ, start_response)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


# Seconds a gRPC call in flight at shutdown may take to finish; the store answers well within it.
GRPC_STOP_GRACE_SECONDS = 5.0


def _close_receiver(receiver: OtlpGrpcServer | None) -> None:
    if receiver is not None:
        receiver.close(GRPC_STOP_GRACE_SECONDS)


@click.group(cls=OneLineErrors)
@click.version_option(package_name="pipetrace")
def main() -> None:
    """Pipetrace: OpenTelemetry logs and traces of dlt pipelines, in an embedded DuckDB store."""


@main.command()
@click.option("--host", help="Address to listen on [env PIPETRACE_HOST; default 127.0.0.1].")
@click.option(
    "--port", type=int, help="Port to listen on; 0 picks a free one [env PIPETRACE_PORT; default 4318]."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the database and spool [env PIPETRACE_DATA_DIR; default ./.pipetrace].",
)
@click.option(
    "--grpc-port",
    type=int,
    help="OTLP/gRPC port on the same host; 0 turns the gRPC receiver off [env PIPETRACE_GRPC_PORT; "
    "default 4317].",
)
@click.option("--threads", type=int, help="Request threads [env PIPETRACE_THREADS; default 8].")
@click.option(
    "--insecure",
    is_flag=True,
    help="Listen beyond loopback without PIPETRACE_API_TOKEN and PIPETRACE_INGEST_TOKEN.",
)
def serve(
    host: str | None,
    port: int | None,
    data_dir: Path | None,
    grpc_port: int | None,
    threads: int | None,
    insecure: bool,
) -> None:
    """Run the service: OTLP/HTTP receiver on /v1/*, OTLP/gRPC on --grpc-port, log API on /api/logs/*."""
    settings = load_settings(host=host, port=port, data_dir=data_dir, grpc_port=grpc_port, threads=threads)
    missing = [
        name
        for name, value in (
            ("PIPETRACE_API_TOKEN", settings.api_token_value),
            ("PIPETRACE_INGEST_TOKEN", settings.ingest_token_value),
        )
        if value is None
    ]
    if missing and not is_loopback(settings.host) and not insecure:
        # Anyone who reaches the port could read every log, delete them, or run code (dlt_code).
        raise click.UsageError(
            f"refusing to listen on {settings.host} without {' and '.join(missing)}: set the token(s), "
            "listen on 127.0.0.1, or pass --insecure"
        )
    if settings.cors_origins and settings.api_token_value is None:
        # Those origins' pages could read every log and run code: CORS is only for a guarded API.
        raise click.UsageError(
            "refusing to start: ALLOW_ORIGINS is set without PIPETRACE_API_TOKEN; set the token or unset "
            "ALLOW_ORIGINS"
        )
    # Both ports are bound before the app is built, so a busy port is the only thing said: nothing
    # (such as "pipetrace ready") is logged for a service that will not run. One process, many
    # threads: DuckDB lets a single process write the file.
    slot = _AppSlot()
    try:
        server = waitress.create_server(
            slot, host=settings.host, port=settings.port, threads=settings.threads
        )
    except OSError as error:
        raise click.ClickException(
            f"cannot listen on {settings.host}:{settings.port}: {error.strerror}"
        ) from error
    receiver: OtlpGrpcServer | None = None
    if settings.grpc_port:
        try:
            receiver = OtlpGrpcServer(settings)
        except ListenError as error:
            server.close()
            raise click.ClickException(str(error)) from error
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(console)
    try:
        app = create_app(settings)
    except ConfigError as error:
        # A broken configuration stops start-up, saying which file, which key and what is wrong.
        server.close()
        _close_receiver(receiver)
        logging.getLogger().removeHandler(console)
        raise click.ClickException(f"invalid configuration: {error}") from error
    except BaseException:
        server.close()
        _close_receiver(receiver)
        raise
    slot.app = app
    # Runs send their telemetry back here; they need the address actually bound (port 0 picks one).
    app.config["PIPETRACE_URL"] = f"http://{settings.host}:{server.effective_port}"
    # Both stop signals flush and close. SIGINT is set explicitly too: a shell starting the service in
    # the background without job control leaves SIGINT ignored, and Python then never raises on it.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, _raise_interrupt)
    if receiver is not None:
        receiver.start(state(app))
        app.config["PIPETRACE_GRPC_ADDRESS"] = receiver.address
        click.echo(f"pipetrace receiving OTLP/gRPC on {receiver.address}")
    click.echo(
        f"pipetrace listening on http://{settings.host}:{server.effective_port} (store {settings.database})",
        err=False,
    )
    sys.stdout.flush()
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        # Calls in flight finish (and are answered) before the telemetry is flushed and the store closed.
        _close_receiver(receiver)
        close_app(app)
        logging.getLogger().removeHandler(console)
        click.echo("pipetrace stopped; telemetry flushed")


main.add_command(spool)
main.add_command(config)
main.add_command(run_command)
main.add_command(pipelines)
main.add_command(alerts)
main.add_command(backup_command)

if __name__ == "__main__":
    main()
