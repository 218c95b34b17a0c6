"""A search's statistics end to end on a tiny configuration: limits, bias tests, the LEE method."""

from __future__ import annotations

import json

import numpy as np

from analysis.config import load_config
from analysis.workflow import run_search
from tests.analysis.search_configs import tiny


def test_search_reports_limits_bias_tests_and_a_named_global_significance(tmp_path):
    raw = tiny(tmp_path, stats={"efficiencies": [1.0, 0.1], "n_pseudo": 20, "bias_test": True})
    result = run_search(load_config(raw))
    saved = json.loads((result.output / "results.json").read_text())
    cwola = saved["methods"]["cwola"]
    lee = cwola["look_elsewhere"]
    assert lee["method"] in ("pseudo-experiments", "gross-vitells", "bonferroni")
    assert lee["best_cell"] == [cwola["best"]["window_index"], 1]
    assert cwola["best"]["global_method"] == lee["method"]
    limits = cwola["limits"]
    assert len(limits) == 2
    for limit in limits:
        assert limit["efficiency"] == cwola["best"]["efficiency"]
        if limit["valid"]:
            assert np.all(np.diff(limit["expected"]) > 0)
            assert limit["observed"] > 0
    assert len(cwola["bias_test"]) == 2
    assert all("injections" in row or "error" in row for row in cwola["bias_test"])
    report = (result.output / "report.md").read_text()
    assert "95% CLs upper limits" in report
    assert "Bias tests" in report
    assert f"({lee['method']})" in report
    limits_plot = result.output / "plots" / "cwola_limits.png"
    assert limits_plot.stat().st_size > 5_000
