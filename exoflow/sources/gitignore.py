"""Git's exclude files besides ``.gitignore``: a repository's ``.git/info/exclude`` and the
user's ``core.excludesFile``, with git's (and ripgrep's) meaning: both apply inside a
repository, weaker than its ``.gitignore`` files."""
from __future__ import annotations

import os
import stat
import subprocess

from exoflow.fileio import OPEN_FLAGS
from exoflow.longpath import open_path


def read_lines(path: str, follow: bool = True) -> tuple[str, ...] | None:
    """The lines of a regular file; None when it cannot be read (it then ignores nothing, as in
    git). A FIFO or device with that name is never opened for reading (O_NONBLOCK); a symlink
    is followed only with ``follow`` (git reads no .gitignore through one, but dotfile managers
    link the user's excludes file)."""
    try:
        fd = open_path(path, OPEN_FLAGS if not follow else OPEN_FLAGS & ~os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as f:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return tuple(f.read().splitlines())
        except OSError:
            return None


def info_exclude(dot_git: str) -> str | None:
    """The path of a repository's info/exclude, given its ``.git``: a directory, or a file
    ``gitdir: PATH`` (worktrees and submodules; a worktree's info/ is in its common directory)."""
    if os.path.isdir(dot_git):
        return os.path.join(dot_git, "info", "exclude")
    first = (read_lines(dot_git, follow=False) or ("",))[0]
    if not first.startswith("gitdir:"):
        return None
    gitdir = os.path.join(os.path.dirname(dot_git), first[len("gitdir:"):].strip())
    common = (read_lines(os.path.join(gitdir, "commondir")) or ("",))[0].strip()
    return os.path.join(gitdir, common, "info", "exclude") if common else os.path.join(gitdir, "info", "exclude")


def user_excludes() -> tuple[str, ...]:
    """The lines of the user's core.excludesFile: from git's configuration when git is
    installed, else git's default place ($XDG_CONFIG_HOME/git/ignore, ~/.config/git/ignore)."""
    path = ""
    try:   # from "/": the system and global settings, no repository's own
        r = subprocess.run(["git", "config", "--path", "--get", "core.excludesFile"], capture_output=True,
                           text=True, cwd="/", timeout=10)
        path = r.stdout.strip() if r.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        pass
    if not path:
        config = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        path = os.path.join(config, "git", "ignore")
    return read_lines(os.path.expanduser(path)) or ()
