"""Settings from mounted files, for every secret each program reads; and the README table matches the classes."""

import os
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from ordermesh_devstack.settings_doc import replace_table, settings_classes, settings_of
from ordermesh_servicekit.setting_files import SettingFileError, variable_names

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_SECRETS = {
    "DATABASE_URL", "ORDERMESH_API_TOKEN", "KAFKA_SASL_PASSWORD", "ORDERMESH_SHOPIFY_SHOPS",
    "ORDERMESH_PAYMENT_CALLBACK_SECRET", "ORDERMESH_STRIPE_API_KEY", "ORDERMESH_WAREHOUSE_CALLBACK_SECRET",
    "ORDERMESH_ADMIN_TOKEN", "ORDERMESH_SMTP_PASSWORD",
}


def _clean(monkeypatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ORDERMESH_", "KAFKA_", "DATABASE_URL")):
            monkeypatch.delenv(name)


def _value_of(settings, variable: str, cls) -> str:
    [name] = [n for n, f in cls.model_fields.items() if settings_of_field(cls, n) == variable]
    value = getattr(settings, name)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def settings_of_field(cls, name: str) -> str:
    return variable_names(cls, name, cls.model_fields[name])[0]


def test_every_secret_the_issue_names_is_a_secret_setting_of_some_program():
    secrets = {s.variable for cls in settings_classes().values() for s in settings_of(cls) if s.secret}
    assert EXPECTED_SECRETS <= secrets, EXPECTED_SECRETS - secrets


@pytest.mark.parametrize("program", list(settings_classes()))
def test_each_secret_setting_is_read_from_its_file_variable_and_from_the_secrets_folder(program, tmp_path, monkeypatch):
    cls = settings_classes()[program]
    secrets = [s.variable for s in settings_of(cls) if s.secret]
    assert secrets
    _clean(monkeypatch)
    for variable in secrets:
        (tmp_path / f"{variable}.txt").write_text(f"file {variable}\n")
        monkeypatch.setenv(f"{variable}_FILE", str(tmp_path / f"{variable}.txt"))
    settings = cls()
    assert {v: _value_of(settings, v, cls) for v in secrets} == {v: f"file {v}" for v in secrets}

    _clean(monkeypatch)
    folder = tmp_path / "mounted"
    folder.mkdir()
    for variable in secrets:
        (folder / variable).write_text(f"mounted {variable}")
    monkeypatch.setenv("ORDERMESH_SECRETS_DIR", str(folder))
    monkeypatch.setenv(secrets[0], "from the variable")
    settings = cls()
    assert _value_of(settings, secrets[0], cls) == "from the variable"
    assert {v: _value_of(settings, v, cls) for v in secrets[1:]} == {v: f"mounted {v}" for v in secrets[1:]}
    assert "mounted" not in repr(settings)


def test_a_file_variable_naming_a_missing_file_is_refused_with_the_variable_named(tmp_path, monkeypatch):
    _clean(monkeypatch)
    monkeypatch.setenv("ORDERMESH_API_TOKEN_FILE", str(tmp_path / "nowhere"))
    with pytest.raises((SettingFileError, ValidationError), match="ORDERMESH_API_TOKEN_FILE"):
        settings_classes()["points"]()


def test_the_readme_settings_table_is_generated_from_the_settings_classes():
    readme = (ROOT / "README.md").read_text()
    assert replace_table(readme) == readme, (
        "README.md's settings table is stale: run `uv run python -m ordermesh_devstack.settings_doc` and commit README.md"
    )
