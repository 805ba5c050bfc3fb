"""Typed run.json (RunInfo) and records (Record.from_json) read back from a real run."""

from __future__ import annotations

import json

import pytest

from prmbench.errors import DataError
from prmbench.metrics import cell_metrics
from prmbench.plugins import build_registry
from prmbench.results import RunInfo, load_run
from prmbench.runner import RunConfig, Runner
from prmbench.types import Record


def test_run_info_and_records_round_trip(tmp_path):
    spec = RunConfig(tasks=("synthetic",), rms=("synthetic_prm",), strategies=("best_of_n", "beam_search"),
                     budgets=(2,), policy="synthetic", limit=3)
    run = load_run(Runner(spec, build_registry(strict=True), tmp_path / "run", log=lambda m: None, concurrency=2).run())
    info = run.info
    assert info.status == "complete" and info.concurrency == 2 and info.config_hash == spec.hash()
    assert info.executor == {"executor": "local"} and "executor" not in info.extra
    assert [c.id for c in info.cells] == [c.id for c in run.cells] and info.tasks["synthetic"]["n_problems"] == 3
    assert info.versions["prmbench"] and "cpu_count" in info.hardware
    for cell in run.cells:
        typed = cell.typed_records()
        assert [r.to_json() for r in typed] == cell.records  # lossless
        assert cell_metrics(typed) == cell_metrics(cell.records) == {k: v for k, v in cell.metrics.items()
                                                                      if k not in ("cell", "complete", "kind")}


def test_malformed_run_json_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="run.json is malformed"):
        RunInfo.from_json({"schema_version": 1, "status": "complete", "config": {}, "config_hash": "x",
                           "prmbench_version": "0", "cells": [{"id": "a"}]})
    with pytest.raises(KeyError):
        Record.from_json(json.loads('{"task": "t"}'))
