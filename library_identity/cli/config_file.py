"""The config file: one TOML file that may hold any setting a flag or an environment
variable sets, read into click's `default_map`, so a flag beats the environment, the
environment beats the file and the file beats the built-in default.

What the file may hold derives from the command line's own options: a key is an option's
long name with underscores (`--stale-days`: `stale_days`), the group's options sit at the
top level and each command's in a table named after it (`[resolve]`, `[rotation.backfill]`).
A value is converted and range-checked by the type that checks the flag, so both are
refused with the same message. Secrets never sit in it: they come from the environment or
from a separate file only its owner can read (`secrets_file`).
"""

from __future__ import annotations

import difflib
import os
import stat
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from library_identity import secrets
from library_identity.errors import ConfigurationError
from library_identity.lml.limits import check_settings

CONFIG_ENV = "LIBRARY_IDENTITY_CONFIG"
SECRETS_FILE_ENV = "LIBRARY_IDENTITY_SECRETS_FILE"
SECRETS_FILE_KEY = "secrets_file"
# The group's settings that are secrets: the secrets file may hold these; the config file
# never holds the key or the DSN, and holds the database URL only without a password.
SECRET_KEYS = ("database_url", "lml_api_key", "sentry_dsn")
_NEVER_IN_CONFIG = ("lml_api_key", "sentry_dsn")
# Chosen on the command line for one run, never by a file.
PER_RUN = frozenset({"dry_run", "as_json", "merge_only", "no_merge", "full_rebuild",
                     "rollback_count", "show_status", "replace", "use_configured",
                     "stale_handles"})
# The test rig's fake LML and dbt's pass-through take nothing from the file.
NOT_CONFIGURED = frozenset({"lml-standin", "dbt"})
# A setting several commands share is set once, at the top level, so they always agree.
SHARED: Mapping[str, tuple[tuple[str, ...], ...]] = {
    "stale_days": (("resolve",), ("report",)),
}
# Where `describe_source` finds which file gave the group's settings.
_SOURCES = "library_identity.config_sources"


def default_path() -> Path:
    """$XDG_CONFIG_HOME/library-identity/config.toml (~/.config when the variable is unset
    or not absolute, as the XDG spec says)."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".config"
    return root / "library-identity" / "config.toml"


def key_of(option: click.Option) -> str:
    long = next((o for o in option.opts if o.startswith("--")), option.opts[0])
    return long.lstrip("-").replace("-", "_")


def settings_of(command: click.Command) -> dict[str, click.Option]:
    """The options of one command (not its subcommands) a file may set, by key."""
    return {key_of(p): p for p in command.params
            if isinstance(p, click.Option) and p.expose_value and p.name not in PER_RUN}


def tables(group: click.Command, prefix: tuple[str, ...] = ()
           ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command below `group` that takes settings from the file, with its table path."""
    if isinstance(group, click.Group):
        for name, command in sorted(group.commands.items()):
            if name in NOT_CONFIGURED:
                continue
            path = (*prefix, name)
            if settings_of(command):
                yield path, command
            yield from tables(command, path)


def every_key(root: click.Command) -> set[str]:
    """Every key a config file may hold, dotted (`rotation.backfill.quiet_pause`)."""
    keys = {k for k in settings_of(root) if k not in _NEVER_IN_CONFIG} | {SECRETS_FILE_KEY}
    keys |= set(SHARED)
    for path, command in tables(root):
        keys |= {".".join((*path, k)) for k in settings_of(command) if k not in SHARED}
    return keys


def locate(given: str | None) -> Path | None:
    """The file named by --config / LIBRARY_IDENTITY_CONFIG, else the default one when it
    exists, else None."""
    if given:
        return Path(given).expanduser()
    path = default_path()
    return path if path.is_file() else None


def load(ctx: click.Context, path: Path | None) -> dict[str, Any]:
    """The settings of the config file (None: there is none) and of the secrets file as a
    default_map for the root context `ctx`; ConfigurationError naming the file and the key
    for anything the command line would refuse."""
    data = _read(path) if path is not None else {}
    root = ctx.command
    found: dict[str, Any] = {}
    sources: dict[str, str] = {}
    ctx.meta[_SOURCES] = sources
    # Secrets first, so a value is registered before any message could show it.
    secrets_path = os.environ.get(SECRETS_FILE_ENV) or None
    given = data.get(SECRETS_FILE_KEY)
    if path is not None and given is not None and not isinstance(given, str):
        raise _error(path, SECRETS_FILE_KEY, f"must be a path (a string), got {_shown(given)}")
    if secrets_path is not None:
        found.update(load_secrets(ctx, Path(secrets_path).expanduser(), sources,
                                  f" that {SECRETS_FILE_ENV} names"))
    elif path is not None and given:
        found.update(load_secrets(ctx, path.parent / Path(given).expanduser(), sources,
                                  f" that the config file {path} names"))
    if path is None:
        return found
    base = path.parent
    globals_ = settings_of(root)
    for key, value in data.items():
        if key == SECRETS_FILE_KEY:
            continue
        if key in SHARED:
            converted = _shared(ctx, path, key, value, base)
            for command_path in SHARED[key]:
                _table(found, command_path)[_option_in(root, command_path, key).name] = converted
        elif key in globals_:
            option = globals_[key]
            if key in _NEVER_IN_CONFIG or (key == "database_url" and isinstance(value, str)
                                           and _password(value)):
                what = "holds a password" if key == "database_url" else "is a secret"
                raise _error(path, key, f"{what}: set it in the environment "
                                        f"({_envvar(option)}) or in the secrets file "
                                        f"({SECRETS_FILE_KEY}), never in this file")
            if option.name in found:
                raise _error(path, key, f"is set in {sources[key]} too; keep one")
            found[str(option.name)] = _convert(ctx, path, key, option, value, base)
            sources[str(option.name)] = f"the config file {path}"
        else:
            subs = root.commands if isinstance(root, click.Group) else {}
            if key not in subs or key in NOT_CONFIGURED:
                raise _error(path, key, _unknown(
                    key, [*globals_, *SHARED, SECRETS_FILE_KEY,
                          *(n for n in subs if n not in NOT_CONFIGURED)],
                    what="setting or command"))
            _command_table(ctx, path, (key,), subs[key], value, found, base)
    return found


def load_secrets(ctx: click.Context, path: Path, sources: dict[str, str],
                 named_by: str = "") -> dict[str, Any]:
    """The secrets file: only its owner may read it; its values are registered as secrets
    and never quoted in a message."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the secrets file "
                                 f"({exc.strerror or type(exc).__name__})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"{path}: the secrets file must be readable by its owner only, and its mode "
            f"{stat.filemode(mode)} lets the group or others in; run `chmod 600 {path}`")
    data = _read(path)
    for value in data.values():
        if isinstance(value, str):
            secrets.register(value, _password(value))
    found: dict[str, Any] = {}
    options = settings_of(ctx.command)
    for key, value in data.items():
        if key not in SECRET_KEYS:
            raise _error(path, key, _unknown(key, SECRET_KEYS, what="secret"))
        if not isinstance(value, str) or not value:
            raise _error(path, key, "must be a non-empty string")
        option = options[key]
        found[str(option.name)] = _convert(ctx, path, key, option, value, path.parent)
        sources[str(option.name)] = f"the secrets file {path}{named_by}"
    return found


def describe_source(ctx: click.Context, name: str) -> str:
    """Where the group's setting `name` came from, for a message."""
    root = ctx.find_root()
    option = next(p for p in root.command.params if p.name == name)
    source = root.get_parameter_source(name)
    if source is ParameterSource.COMMANDLINE:
        return str(option.opts[0])
    if source is ParameterSource.ENVIRONMENT:
        return "the environment"
    if source is ParameterSource.DEFAULT_MAP:
        return str(root.meta.get(_SOURCES, {}).get(name, "the config file"))
    return "the default"


# -- reading ------------------------------------------------------------------------------
def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the config file "
                                 f"({exc.strerror or type(exc).__name__})") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{path}: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message names the line and column, never a value.
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None


def _command_table(ctx: click.Context, path: Path, where: tuple[str, ...],
                   command: click.Command, value: Any, found: dict[str, Any],
                   base: Path) -> None:
    name = ".".join(where)
    if not isinstance(value, dict):
        raise _error(path, name, f"must be a table ([{name}]), got {_shown(value)}")
    options = settings_of(command)
    subs = {n: c for n, c in getattr(command, "commands", {}).items() if n not in NOT_CONFIGURED}
    if not options and not subs:
        raise _error(path, f"[{name}]", f"{name} takes no settings from the config file")
    table = _table(found, where)
    for key, item in value.items():
        if key in subs:
            _command_table(ctx, path, (*where, key), subs[key], item, found, base)
        elif key in SHARED and key in options:
            raise _error(path, f"[{name}] {key}",
                         f"is shared by {_commands(SHARED[key])}: set it once at the top "
                         f"level, before any table")
        elif key in options:
            option = options[key]
            table[str(option.name)] = _convert(ctx, path, f"[{name}] {key}", option, item, base)
        else:
            per_run = {key_of(p): p.opts[0] for p in command.params
                       if isinstance(p, click.Option) and p.name in PER_RUN}
            why = (f"{per_run[key]} is chosen on the command line, run by run"
                   if key in per_run
                   else _unknown(key, [*options, *subs], what=f"setting of {name}"))
            raise _error(path, f"[{name}] {key}", why)


def _shared(ctx: click.Context, path: Path, key: str, value: Any, base: Path) -> Any:
    """Checked by every command that shares it (they declare the same range)."""
    converted = [_convert(ctx, path, key, _option_in(ctx.command, p, key), value, base)
                 for p in SHARED[key]]
    return converted[0]


def _option_in(root: click.Command, command_path: tuple[str, ...], key: str) -> click.Option:
    command = root
    for name in command_path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return settings_of(command)[key]


def _table(found: dict[str, Any], where: tuple[str, ...]) -> dict[str, Any]:
    for name in where:
        found = found.setdefault(name, {})
    return found


# -- values -------------------------------------------------------------------------------
_KIND_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _kind(option: click.Option) -> type:
    declared = getattr(option.type, "kind", None)  # a declared setting (cli.app) knows it
    if declared in (int, float):
        return declared  # type: ignore[no-any-return]
    for click_type, kind in ((click.types.BoolParamType, bool), (click.types.IntParamType, int),
                             (click.types.FloatParamType, float)):
        if isinstance(option.type, click_type):
            return kind
    return str


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _convert(ctx: click.Context, path: Path, key: str, option: click.Option, value: Any,
             base: Path) -> Any:
    """The value as the flag would have it, or ConfigurationError with the flag's message."""
    kind = _kind(option)
    secret = option.name in SECRET_KEYS
    items = value if option.multiple else [value]
    if option.multiple and not isinstance(value, list):
        raise _error(path, key, f"must be a list of {_KIND_NAMES[kind].split(' ', 1)[1]}s, "
                                f"got {_shown(value, secret)}")
    converted = []
    for item in items:
        if not _fits(item, kind):
            raise _error(path, key, f"must be {_KIND_NAMES[kind]}, got {_shown(item, secret)}")
        if isinstance(option.type, click.Path):
            item = str(base / Path(item).expanduser())  # relative to the file's folder
        try:
            converted.append(option.type.convert(item, option, ctx))
            _check_global(option, item)
        except click.BadParameter as exc:
            raise _error(path, key, exc.message) from None
        except ValueError as exc:
            raise _error(path, key, secrets.scrub(str(exc))) from None
    return tuple(converted) if option.multiple else converted[0]


def _check_global(option: click.Option, value: Any) -> None:
    """The checks the group's settings get when they are used, made while the file is read
    so the message can name the file and key."""
    if option.name == "lml_url":
        check_settings(value, None)
    elif option.name == "lml_api_key":
        check_settings("https://lml.example", value)
    elif option.name == "database_url":
        from library_identity.db import resolve_database

        resolve_database(value)  # a URL only parses: it connects to nothing


def _password(value: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return conninfo_to_dict(value).get("password")  # type: ignore[return-value]
    except Exception:
        return None


def _shown(value: Any, secret: bool = False) -> str:
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "a list", dict: "a table"}
    kind = next((name for t, name in kinds.items() if type(value) is t), type(value).__name__)
    if secret or isinstance(value, list | dict):
        return kind
    return f"{value!r} ({kind})"


def _envvar(option: click.Parameter) -> str:
    return str(option.envvar) if option.envvar else "no environment variable"


def _commands(paths: tuple[tuple[str, ...], ...]) -> str:
    return " and ".join(" ".join(p) for p in paths)


def _unknown(key: str, known: Any, what: str = "setting") -> str:
    known = sorted(set(known))
    close = difflib.get_close_matches(key.replace("-", "_"), known, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"not a {what}{hint}; known: {', '.join(known)}"


def _error(path: Path, key: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"{path}: {key}: {message}")
