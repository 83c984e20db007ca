"""The one exception type that reaches users: its message is a single line saying what was wrong and the fix."""
import contextlib
import errno
import sys

FULL_DISK = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, quota exceeded, file-size limit


class GtRError(Exception):
    """A user-facing error. Scripts print ``str(err)`` on one line and exit with status 2."""


def require(module: str, extra: str):
    """Import ``module`` of an optional extra, or say in one line which extra to install."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise GtRError(f"{module.split('.')[0]} is not installed: pip install 'gtr-mar[{extra}]' (in a clone: "
                       f"pip install -e '.[{extra}]' -c constraints.txt)") from err


@contextlib.contextmanager
def one_line_errors(folder=None):
    """Around a job: a :class:`GtRError` or a full disk ends it with one line on stderr and exit status 2 (naming the
    file, else the job's output ``folder``); Ctrl-C ends it with one line and status 130. Every job writes
    atomically, so re-running the same command after freeing space (or after an interrupt) resumes (or redoes) it
    cleanly."""
    try:
        yield
    except KeyboardInterrupt:
        print("\ninterrupted: re-run the same command to resume or redo it (finished files are kept)", file=sys.stderr)
        sys.exit(130)
    except GtRError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        if err.errno not in FULL_DISK:
            raise
        target = err.filename or folder
        where = f" writing {target}" if target else ""
        print(f"error: {err.strerror or 'no space left on the device'}{where}: free space (or raise the quota) and "
              "re-run the same command; it resumes where it stopped", file=sys.stderr)
        sys.exit(2)
