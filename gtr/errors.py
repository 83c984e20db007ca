"""The one exception type that reaches users: its message is a single line saying what was wrong and the fix."""


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
