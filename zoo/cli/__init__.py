"""The `zoo` command line: thin commands over the Python API, Rich tables for people, --json for programs.

One module per command group holds its commands; this one assembles them on the shared app (zoo.cli.app)
in the order `zoo --help` lists them. `main` turns a ZooError into one line on stderr, worded with the
options of the command that was run (zoo.cli.errors).
"""

from __future__ import annotations

import os
import sys

import typer

from zoo.cli import benchmark, download, evaluate, export, models, plot, predict, serve, study, train, tune
from zoo.cli.app import app, err, out
from zoo.cli.errors import cli_message, click_error, invoked_command
from zoo.core.errors import ZooError
from zoo.core.extras import missing_extra

__all__ = ["app", "main"]

# The commands, in the order `zoo --help` lists them.
for name, command in (
    ("list", models.list_command),
    ("info", models.info_command),
    ("train", train.train_command),
    ("eval", evaluate.eval_command),
    ("study", study.study_command),
    ("experiment", study.experiment_command),
    ("export", export.export_command),
    ("predict", predict.predict_command),
    ("download", download.download_command),
    ("serve", serve.serve_command),
    ("tune", tune.tune_command),
    ("benchmark", benchmark.benchmark_command),
):
    app.command(name)(command)
app.add_typer(plot.plot_app, name="plot")


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and a non-zero status; ZOO_DEBUG=1 shows tracebacks."""
    command = typer.main.get_command(app)
    debug = bool(os.environ.get("ZOO_DEBUG"))
    args = sys.argv[1:] if argv is None else argv
    try:
        result = command.main(args=args, prog_name="zoo", standalone_mode=False)
    except ZooError as error:
        if debug:
            raise
        err.print(f"error: {cli_message(error, invoked_command(command, args))}", soft_wrap=True, markup=False)
        return error.exit_code
    except ModuleNotFoundError as error:
        needed = missing_extra(error, f"zoo {' '.join(t for t in args[:2] if not t.startswith('-'))}".strip())
        if debug or needed is None:
            raise
        err.print(f"error: {needed}", soft_wrap=True, markup=False)
        return needed.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except Exception as error:
        if click_error(error, "NoArgsIsHelpError"):
            out.print(error.ctx.get_help())
            return 0
        if debug or not click_error(error, "ClickException"):
            raise
        where = error.ctx.command_path if getattr(error, "ctx", None) else "zoo"
        err.print(f"error: {error.format_message()} (try `{where} --help`)", soft_wrap=True, markup=False)
        return error.exit_code
    except BaseException as error:  # click's Exit and Abort are BaseException subclasses in some versions
        if click_error(error, "Exit"):
            return error.exit_code
        if click_error(error, "Abort"):
            err.print("aborted")
            return 130
        raise
    return result if isinstance(result, int) else 0
