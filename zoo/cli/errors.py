"""Library errors worded for the command line: each argument an error marks becomes the option of the
command that was run that sets it (from the command's own parameters), so a hint names only real options."""

from __future__ import annotations

from typing import Any

from zoo.core.errors import ZooError

# Typer vendors its own copy of click, so click's classes are recognised by what they have, not imported.
Command = Any


def invoked_command(group: Command, args: list[str]) -> Command:
    """The (sub)command that `args` ran: `plot curves` within `plot`, for example."""
    command = group
    for token in args:
        if token.startswith("-"):
            continue
        sub = getattr(command, "commands", {}).get(token)
        if sub is None:
            break
        command = sub
    return command


def options_of(command: Command) -> dict[str, Any]:
    """Each option by the API argument it sets: its long name in Python spelling (`--data-dir` -> data_dir)."""
    found = {}
    for param in getattr(command, "params", []):
        if param.param_type_name == "option":
            long = max(param.opts, key=len)
            found[long.lstrip("-").replace("-", "_")] = param
    return found


def cli_message(error: ZooError, command: Command) -> str:
    options = options_of(command)

    def spell(name: str, value: str | None) -> str:
        option = options.get(name)
        if option is None:  # the command sets it another way (or not at all): the API's spelling
            return name if value is None else f"{name}={value}"
        flag = max(option.opts, key=len)
        return flag if value is None or (option.is_flag and value == "True") else f"{flag} {value}"

    return error.render(spell)


def click_error(error: BaseException, name: str) -> bool:
    # Recent typer releases vendor their own copy of click, so its exception classes are matched by
    # name rather than imported from one module or the other.
    return any(cls.__name__ == name for cls in type(error).__mro__)
