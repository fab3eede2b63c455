"""Settings from mounted files: `NAME_FILE=/path` variables and a directory of files named after variables.

A Kubernetes Secret or a Docker secret is mounted as files; a setting is read from a file when
`<VARIABLE>_FILE` names one, or when `ORDERMESH_SECRETS_DIR` holds a file named after the variable
(`DATABASE_URL`, `ORDERMESH_API_TOKEN`, ...). A plain variable of the same name still wins.
"""

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

SECRETS_DIR_VARIABLE = "ORDERMESH_SECRETS_DIR"


class SettingFileError(ValueError):
    """A `*_FILE` variable or the secrets directory names a file that cannot be read."""


def variable_names(settings_cls: type[BaseSettings], name: str, field: FieldInfo) -> list[str]:
    """The environment variables a field is read from, in the order they are tried."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [f"{settings_cls.model_config.get('env_prefix', '')}{name}".upper()]


def _read(path: Path, variable: str) -> str:
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as error:
        raise SettingFileError(f"{variable}: cannot read {path}: {error.strerror or error}") from None


class SettingFilesSource(PydanticBaseSettingsSource):
    """Reads each field from `<VARIABLE>_FILE`, else from `$ORDERMESH_SECRETS_DIR/<VARIABLE>`."""

    def __init__(self, settings_cls: type[BaseSettings], environ: dict[str, str] | None = None) -> None:
        super().__init__(settings_cls)
        self.environ = {name.upper(): value for name, value in (os.environ if environ is None else environ).items()}
        secrets_dir = self.environ.get(SECRETS_DIR_VARIABLE, "")
        self.secrets_dir = Path(secrets_dir) if secrets_dir else None

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The file's text for the first of the field's variables that has one (key: that variable)."""
        names = variable_names(self.settings_cls, field_name, field)
        key = names[0] if field.validation_alias else field_name
        for name in names:
            pointer = self.environ.get(f"{name}_FILE")
            if pointer:
                return _read(Path(pointer), f"{name}_FILE"), key, False
        if self.secrets_dir is not None:
            for name in names:
                candidate = self.secrets_dir / name
                if candidate.is_file():
                    return _read(candidate, name), key, False
        return None, key, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, key, _complex = self.get_field_value(field, field_name)
            if value is not None:
                values[key] = value
        return values


class FileAwareSettings(BaseSettings):
    """Base of ordermesh settings: init arguments, then variables, then `*_FILE` and the secrets directory."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        dotenv_values = getattr(dotenv_settings, "env_vars", None) or {}
        environ = {**{name: value for name, value in dotenv_values.items() if value is not None}, **os.environ}
        return (init_settings, env_settings, dotenv_settings, SettingFilesSource(settings_cls, environ))
