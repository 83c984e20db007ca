"""Composing the jobs' Hydra configs, and checking them before a job starts.

Every job (``gtr-sample``, ``gtr-generate``, ...) runs :func:`preflight` on its command line first: it composes the
config exactly as Hydra will (each combination of a ``--multirun`` sweep), checks it against the schemas of
:mod:`gtr.config.schema`, and turns any failure (an unknown model or sampler, a misspelt key, a value of the wrong
type, an override Hydra cannot parse) into one line naming the fix, exit status 2, before anything is loaded or
written.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf

from gtr.errors import GtRError, one_line_errors

CONFIGS = Path(__file__).resolve().parents[1] / "configs"  # shipped in the package (``configs/`` in a clone links here)
MAX_SWEEP_CHECKS = 256  # combinations of a --multirun sweep composed up front (the rest are checked as they run)


def _config_choice(group: str, default: str) -> str:
    """``${choice:sampler,<default>}``: the config file chosen for ``group`` in this Hydra run (e.g. ``mar_16``, whose
    sampler name is ``mar``), or ``default`` outside a Hydra run; output folders are named by it, so that different
    configs of one sampler never share (and resume) a folder."""
    from hydra.core.hydra_config import HydraConfig
    try:
        return HydraConfig.get().runtime.choices.get(group) or default
    except ValueError:  # not inside a Hydra run (compose API, notebooks)
        return default


def run_tag(default: str) -> str:
    """``${run_tag:<default>}``: the sampler config's name, with ``+<cache>`` when a cache is chosen that the sampler
    config does not already name (``gtr_16+lazymar``; ``sampler=lazymar`` stays ``lazymar``)."""
    sampler, cache = _config_choice("sampler", default), _config_choice("cache", "none")
    return sampler if cache == "none" or sampler.startswith(cache) else f"{sampler}+{cache}"


OmegaConf.register_new_resolver("choice", _config_choice, replace=True)
OmegaConf.register_new_resolver("run_tag", run_tag, replace=True)


def compose_config(*overrides: str, name: str = "sample", hydra_node: bool = False):
    """A job's config (``sample``, ``train``, ...) with Hydra-style overrides, for benchmarks, tests and notebooks;
    composition errors raise :class:`GtRError` with one line (see :func:`explain`)."""
    import yaml
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from gtr.config.schema import register, validate
    register()
    try:
        with initialize_config_dir(str(CONFIGS), version_base="1.3"):
            cfg = compose(name, overrides=list(overrides), return_hydra_config=hydra_node)
    except (HydraException, OmegaConfBaseException) as err:
        raise GtRError(explain(err, name, overrides)) from None
    except yaml.YAMLError as err:  # a config file of the user's (--config-dir, hydra.searchpath) that is not YAML
        mark = getattr(err, "problem_mark", None)
        where = f"{mark.name}:{mark.line + 1}" if mark else "a config file"
        raise GtRError(f"{where} is not valid YAML ({getattr(err, 'problem', None) or err}): fix that file") from None
    if hydra_node:  # ${hydra:...} interpolations (e.g. output_dir=...${hydra:job.num}) resolve as in a Hydra run
        from hydra.core.hydra_config import HydraConfig
        HydraConfig.instance().set_config(cfg)
    validate(cfg, name)
    return cfg


def preflight(name: str, argv: Sequence[str]) -> None:
    """Compose and check the config a Hydra job would run with ``argv`` (its command line); exit 2 with one line on
    any error. Help, info and shell-completion requests, and another primary config, are left to Hydra."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra._internal.utils import get_args_parser
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    args, _ = get_args_parser().parse_known_args(list(argv))
    if (args.help or args.hydra_help or args.info or args.shell_completion or args.config_path
            or args.experimental_rerun or (args.config_name not in (None, name))):
        return
    # --config-dir adds a folder of the user's to the search path: checked the same way, through Hydra's searchpath
    extra = [f"hydra.searchpath=[file://{Path(args.config_dir).resolve()}]"] if args.config_dir else []
    from gtr.config.schema import first_line
    with one_line_errors():
        try:
            parsed = OverridesParser.create().parse_overrides(args.overrides)
        except HydraException as err:
            raise GtRError(f"cannot parse the command line ({first_line(err)}): write overrides as key=value, quote "
                           "values with spaces, brackets or commas (see `--hydra-help`)") from None
        sweeping = any(o.is_sweep_override() for o in parsed)
        if sweeping and not args.multirun:
            sweep = next(o.input_line for o in parsed if o.is_sweep_override())
            raise GtRError(f"{sweep} lists several values: add --multirun to run one job per value, or give one value")
        combinations = [c for batch in BasicSweeper.split_arguments(parsed, None) for c in batch] if sweeping \
            else [list(args.overrides)]
        for overrides in combinations[:MAX_SWEEP_CHECKS]:
            compose_config(*overrides, *extra, name=name, hydra_node=True)


def explain(err: BaseException, name: str, overrides: Sequence[str]) -> str:
    """One line for a Hydra/OmegaConf composition error: what is wrong and the valid choices or keys."""
    from hydra.errors import MissingConfigException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

    from gtr.config.schema import describe, first_line

    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options is not None:
        group, _, choice = err.missing_cfg_file.rpartition("/")
        options = sorted(o for o in err.options if not o.startswith("_"))
        close = difflib.get_close_matches(choice, options, n=1)
        hint = f" (did you mean {group}={close[0]}?)" if close else ""
        return f"no {group} config {choice!r}{hint}: choose one of {', '.join(options)}"
    cause = err.__cause__ or err.__context__ or err
    key = getattr(cause, "full_key", None) or getattr(err, "full_key", None)
    if isinstance(cause, (ConfigKeyError, ConfigAttributeError)) and key:
        return f"unknown key {key!r}{_suggest(key, name, overrides)}"
    if isinstance(cause, ValidationError):
        return describe(cause)
    message = first_line(err)
    if message.startswith("Could not override") and cause is not err:
        message = f"{message} {first_line(cause)}"
    return message


def _suggest(full_key: str, name: str, overrides: Sequence[str]) -> str:
    """`` (did you mean ...?)`` from the keys beside a misspelt one, or the list of valid keys."""
    parent, _, leaf = full_key.rpartition(".")
    rest = [o for o in overrides if not re.match(rf"^[+~]*{re.escape(full_key)}(=|$)", o)]
    try:
        from hydra import compose, initialize_config_dir
        with initialize_config_dir(str(CONFIGS), version_base="1.3"):
            base = compose(name, overrides=rest)
        node = base
        for part in filter(None, parent.split(".")):
            node = node[part]
        keys = sorted(str(k) for k in node.keys())
    except Exception:  # noqa: BLE001 -- suggestions are best effort; the error itself is already known
        return ""
    close = difflib.get_close_matches(leaf, keys, n=1)
    where = f"{parent} keys" if parent else f"{name} config keys"
    if close:
        return f": did you mean {f'{parent}.' if parent else ''}{close[0]}? ({where}: {', '.join(keys)})"
    return f": {where} are {', '.join(keys)}"
