"""The seam between the loader and the dbt project: the names the loader uses exist in
the project (selectors, vars, exposures), and with `LIBRARY_IDENTITY_DBT_SCHEMA` set to
another schema, resolve (with its merge), rotation refresh and the report all work in
that schema and nothing is built in the default one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, get_args

import pytest
import yaml

from library_identity import dbt_names, migrate
from library_identity.db import Database
from library_identity.demo.seed import seed_library
from library_identity.demo.standin.server import StandIn, StandInConfig
from library_identity.errors import ConfigurationError
from library_identity.lml.client import LMLClient
from library_identity.lml.contract import IdentityMethod, IdentitySource
from library_identity.report.data import (
    ALERTS_MODEL,
    BANDS_MODEL,
    SECTIONS,
    WORKLIST_MODEL,
    load_report,
)
from library_identity.resolve.resolve_job import ResolveOptions, resolve
from library_identity.rotation.refresh import RefreshOptions, refresh

ROOT = dbt_names.PROJECT_DIR
KEY = "test-key-names-7a6b5c"
OTHER_SCHEMA = "li_other_models"
N_ROWS = 2000


def _yaml(name: str) -> Any:
    return yaml.safe_load((ROOT / name).read_text(encoding="utf-8"))


def test_every_selector_the_loader_names_is_defined() -> None:
    defined = {s["name"] for s in _yaml("selectors.yml")["selectors"]}
    assert set(dbt_names.SELECTORS) == defined


def test_every_var_the_loader_passes_is_declared_with_a_default() -> None:
    declared = dbt_names.project_vars()
    assert [v for v in dbt_names.PASSED_VARS if v not in declared] == []
    assert ResolveOptions().dbt_vars().keys() <= set(dbt_names.PASSED_VARS)


def test_the_models_the_loader_reads_are_its_exposures() -> None:
    # The loader's exposures (the station's are the write-back's and the gates').
    exposed = {ref.removeprefix("ref('").removesuffix("')")
               for exposure in _yaml("models/exposures.yml")["exposures"]
               if exposure["name"].startswith("loader_")
               for ref in exposure["depends_on"]}
    assert exposed == set(dbt_names.READ_MODELS)
    # The report reads exactly the report models the seam names.
    assert {s.model for s in SECTIONS} | {BANDS_MODEL, ALERTS_MODEL, WORKLIST_MODEL} == set(
        dbt_names.REPORT_MODELS)


def test_what_the_loader_reads_keeps_its_shape() -> None:
    """Each model the loader reads has an enforced contract (names and types of every
    column), and each seed it reads declares its column types."""
    declared: dict[str, dict[str, Any]] = {}
    for path in sorted((ROOT / "models").rglob("_*__models.yml")):
        declared.update({m["name"]: m for m in _yaml(str(path.relative_to(ROOT)))["models"]})
    seeds = {s["name"]: s for path in sorted((ROOT / "seeds").rglob("_*__seeds.yml"))
             for s in _yaml(str(path.relative_to(ROOT)))["seeds"]}
    for name in dbt_names.READ_MODELS:
        if name in seeds:
            types = seeds[name]["config"]["column_types"]
            assert [c["name"] for c in seeds[name]["columns"]] == list(types), name
            continue
        model = declared[name]
        assert model.get("config", {}).get("contract", {}).get("enforced") is True, name
        assert all(c.get("data_type") for c in model["columns"]), name


def test_dbt_gets_the_schema_the_loader_reads(monkeypatch: pytest.MonkeyPatch,
                                              server: Database) -> None:
    monkeypatch.delenv(dbt_names.SCHEMA_ENV, raising=False)
    assert server.dbt_env()[dbt_names.SCHEMA_ENV] == "identity" == dbt_names.schema()
    monkeypatch.setenv(dbt_names.SCHEMA_ENV, OTHER_SCHEMA)
    assert server.dbt_env()[dbt_names.SCHEMA_ENV] == OTHER_SCHEMA == dbt_names.schema()
    assert dbt_names.relation("x").as_string(None) == f'"{OTHER_SCHEMA}"."x"'


@pytest.mark.parametrize("name", ["identity'x", 'a"b', "Identity", "1st", "a b", "x" * 64])
def test_a_schema_name_dbt_would_read_otherwise_is_refused(
        name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dbt_names.SCHEMA_ENV, name)
    with pytest.raises(ConfigurationError, match=dbt_names.SCHEMA_ENV):
        dbt_names.schema()


def _scalar(db: Database, query: str, *params: Any) -> Any:
    with db.connect() as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def test_resolve_refresh_and_report_in_another_schema(
        monkeypatch: pytest.MonkeyPatch, make_database: Callable[[], Database]) -> None:
    monkeypatch.setenv(dbt_names.SCHEMA_ENV, OTHER_SCHEMA)
    db = make_database()
    migrate.apply(db)
    with db.connect() as conn:
        seed_library(conn, N_ROWS)
    with StandIn(StandInConfig(api_key=KEY)) as standin, \
            LMLClient(base_url=standin.url, api_key=KEY) as client:
        resolved = resolve(db, client, ResolveOptions(concurrency=2), merge=True)
        assert resolved.status == "succeeded"
        assert resolved.merge is not None and resolved.merge.success, resolved.merge
        scanned = resolved.counters.total.scanned
        assert scanned > 0
        # The candidate view (a report build that rebuilds what it reads drops it with
        # them; the next resolve builds it again).
        assert _scalar(db, "select to_regclass(%s)",
                       f"{OTHER_SCHEMA}.{dbt_names.LIBRARY_CANDIDATES}") is not None
        assert _scalar(db, "select count(*) from wxyc_schema.library_identity where notes = %s",
                       dbt_names.project_vars()["identity_notes"]) > 0
        with LMLClient(base_url=standin.url, api_key=KEY, requests_per_minute=6000,
                       timeout_s=300) as refresh_client:
            refreshed = refresh(db, refresh_client, RefreshOptions(retry_delay_s=0.0))
    assert refreshed.status in ("succeeded", "alert"), refreshed
    active = _scalar(db, "select count(distinct lml_identity_id) from wxyc_schema.rotation "
                         "where (kill_date is null or kill_date > current_date)")
    assert active > 0 and refreshed.identities == active

    report = load_report(db)
    whole = {r["cohort"]: r for r in report.sections["library_coverage"]}["all"]
    assert int(whole["library_rows"]) == N_ROWS
    assert int(whole["ever_attempted"]) == scanned  # the run's rows, merged and reported

    # Everything dbt built is in the other schema; the default one was never created.
    assert _scalar(db, "select to_regnamespace('identity')") is None
    for model in dbt_names.REPORT_MODELS:
        assert _scalar(db, "select to_regclass(%s)", f"{OTHER_SCHEMA}.{model}") is not None, model


def test_lml_vocabularies_match_the_dbt_vars() -> None:
    assert list(get_args(IdentitySource)) == dbt_names.project_vars()["identity_sources"]
    assert list(get_args(IdentityMethod)) == dbt_names.project_vars()["identity_methods"]


def test_resolve_defaults_are_the_dbt_var_defaults() -> None:
    passed = ResolveOptions().dbt_vars()
    assert passed == {name: dbt_names.project_vars()[name] for name in passed}
