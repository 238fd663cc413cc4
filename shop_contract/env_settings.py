"""How both processes read their settings: one error type, one env file, one reader.

Each group of settings is a frozen pydantic dataclass whose fields name their variable
(`Field(default, env="NAME", ...)`); `read_env` fills it from the environment, where a
blank value means unset, and turns the first problem into a `ConfigError` of one line that
names the variable and says what to do. pydantic parses the numbers and checks their
bounds (`gt`, `ge`, `le`…); a field's validator raises TypeError for a value of the wrong
kind (rendered as "expected <the field's `expected`>") and ValueError for a broken rule
(rendered as its message). Extra field keywords: `why` says what fails without the
variable (or why its bound exists), `expected` describes a valid value.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import AnyHttpUrl, BaseConfig, Field, ValidationError, parse_obj_as
from pydantic.error_wrappers import ErrorWrapper
from pydantic.errors import (
    MissingError,
    NumberNotFiniteError,
    NumberNotGeError,
    NumberNotGtError,
    NumberNotLeError,
    NumberNotLtError,
)
from pydantic.fields import FieldInfo

from shop_contract.app_secrets import split_secrets

ENV_FILE_VARIABLE = "ENV_FILE"
SANDBOX_VARIABLE = "SANDBOX"

Settings = TypeVar("Settings")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line that names the variable
    and says what to do. Every settings error of both processes derives from it."""


class EnvConfig(BaseConfig):
    """pydantic's configuration of every settings dataclass."""

    allow_inf_nan = False  # "inf" seconds or "nan" days is a typo, not a setting
    arbitrary_types_allowed = True  # parsed keys (KeyRing, RSAPrivateKey) are fields too


SECRET_FIELD = re.compile(r"token|secret|key|password", re.IGNORECASE)


class MaskedRepr:
    """The repr of a settings dataclass (declared with `repr=False`), with the value of every
    field whose name says it holds a secret (token, secret, key, password) masked: a settings
    object that ends up in a log line or a traceback shows no credential."""

    def __repr__(self) -> str:
        shown = (
            f"{f.name}={'***' if SECRET_FIELD.search(f.name) else repr(getattr(self, f.name))}"
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )
        return f"{type(self).__name__}({', '.join(shown)})"


def in_sandbox(environ: Mapping[str, str]) -> bool:
    """SANDBOX=1: the sandbox gave every setting itself (sandbox/settings.py bot_env)."""
    return environ.get(SANDBOX_VARIABLE, "").strip() == "1"


def load_env_file(environ: MutableMapping[str, str] = os.environ) -> Path | None:
    """Adds the env file's settings to `environ` (those already set win; a blank one counts
    as unset, as everywhere in the settings, so `KEY=` from a compose file cannot hide the
    file's key); returns its path.

    The file is ENV_FILE when set (a relative path counts from the working directory, as in
    scripts/run.sh), else `.env` in the working directory: the bot's own directory, where
    `rasa run` also reads credentials.yml, never this package's folder. Nothing is read
    under SANDBOX=1, so a real key in a developer's `.env` never reaches the sandbox.
    A missing `.env` is fine; a missing ENV_FILE is a ConfigError (a typo there would
    otherwise start the bot without its settings).
    """
    if in_sandbox(environ):
        return None
    named = environ.get(ENV_FILE_VARIABLE, "").strip()
    path = Path(named) if named else Path.cwd() / ".env"
    if not path.exists():
        if named:
            raise ConfigError(f"{ENV_FILE_VARIABLE}: no file at {path}")
        return None
    for name, value in dotenv_values(path).items():
        if value is not None and not is_set(environ, name):
            environ[name] = value
    return path


def is_set(environ: Mapping[str, str], *names: str) -> bool:
    """True when every variable in `names` has a value that is not blank."""
    return all(environ.get(name, "").strip() for name in names)


def read_env(cls: type[Settings], environ: Mapping[str, str], **given: Any) -> Settings:
    """`cls` from `environ` (values stripped, blank ones unset) and `given` (fields parsed
    elsewhere, e.g. a key); ConfigError with the first problem, in field order."""
    fields = cls.__pydantic_model__.__fields__  # type: ignore[attr-defined]
    values = dict(given)
    for name, field in fields.items():
        variable = field.field_info.extra.get("env")
        raw = environ.get(variable, "").strip() if variable else ""
        if raw and name not in given:
            values[name] = raw
    try:
        return cls(**values)
    except ValidationError as error:
        raise ConfigError(explain(error, fields)) from None


def explain(error: ValidationError, fields: Mapping[str, Any]) -> str:
    """The first of pydantic's errors as one line naming the variable."""
    wrapper = error.raw_errors[0]
    assert isinstance(wrapper, ErrorWrapper)  # settings dataclasses have no nested models
    problem = wrapper.exc
    if isinstance(problem, ConfigError):  # already one line naming its variable
        return str(problem)
    info: FieldInfo = fields[str(wrapper.loc_tuple()[0])].field_info
    variable = info.extra.get("env", wrapper.loc_tuple()[0])
    why = info.extra.get("why", "")
    because = f" — {why}" if why else ""
    if isinstance(problem, MissingError):
        return f"{variable}: not set{because} (see .env.example)"
    if isinstance(problem, (TypeError, NumberNotFiniteError)):
        return f"{variable}: expected {info.extra.get('expected', 'another kind of value')}"
    if isinstance(
        problem, (NumberNotGtError, NumberNotGeError, NumberNotLtError, NumberNotLeError)
    ):
        return f"{variable}: must be {bounds(info)}{because}"
    return f"{variable}: {problem}"


def bounds(info: FieldInfo) -> str:
    """A field's allowed range in words: 'between 30 and 1440', 'more than 0'…"""
    if info.ge is not None and info.le is not None:
        return f"between {info.ge:g} and {info.le:g}"
    words = {"gt": "more than", "ge": "at least", "lt": "less than", "le": "at most"}
    limits = [(word, getattr(info, name)) for name, word in words.items()]
    return " and ".join(f"{word} {limit:g}" for word, limit in limits if limit is not None)


def secret_list(value: Any) -> Any:
    """A validator's body for comma-separated secrets ('old,new' during a rotation)."""
    secrets = split_secrets(value) if isinstance(value, str) else value
    if not secrets:
        raise ValueError("no secret in the comma-separated list")
    return secrets


def seconds(default: float, variable: str) -> Any:
    """A settings field: a duration in seconds, more than 0."""
    return Field(
        default=default, env=variable, gt=0, expected=f"a number of seconds, e.g. {default:g}"
    )


MIN_SECRET_LENGTH = 16


def long_secrets(secrets: tuple[str, ...]) -> tuple[str, ...]:
    """A validator's body for secrets we make ourselves (tokens, signing secrets): guessable
    ones are refused."""
    if any(len(secret) < MIN_SECRET_LENGTH for secret in secrets):
        raise ValueError(
            f"too short: use at least {MIN_SECRET_LENGTH} random characters "
            "(e.g. `openssl rand -hex 32`)"
        )
    return secrets


def http_url(value: str) -> str:
    """A validator's body for an http(s) URL; TypeError (-> "expected …") when it is not."""
    try:
        parse_obj_as(AnyHttpUrl, value)
    except ValidationError:
        raise TypeError("not an http(s) URL") from None
    return value


LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def https_url(value: str) -> str:
    """A validator's body for a URL that signed events with personal data go to: https, or
    plain http to this machine's loopback (the sandbox and tests) only."""
    http_url(value)
    if urlsplit(value).scheme != "https" and urlsplit(value).hostname not in LOOPBACK_HOSTS:
        raise ValueError("must be https:// (plain http:// only to 127.0.0.1, ::1 or localhost)")
    return value
