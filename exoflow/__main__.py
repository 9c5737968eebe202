"""The ``exoflow`` command (the console script, and ``python -m exoflow``): a Ctrl-C during its
start-up is one line and exit 130 (``errors.exit_on_interrupt``), from before exoflow.cli and
what it imports are loaded."""
from exoflow.errors import exit_on_interrupt


def entry() -> None:
    exit_on_interrupt()
    from exoflow.cli import entry as command
    command()


if __name__ == "__main__":
    entry()
