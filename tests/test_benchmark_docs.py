"""The benchmarks' generated tables in a markdown page: replaced between markers, else refused."""

from pathlib import Path

import pytest

from benchmarks.sic_vs_injection import docs_markers, splice_tables

OUT = Path("results/ranode_restarts.json")


def test_the_tables_between_the_markers_are_replaced_and_the_rest_kept(tmp_path):
    begin, end = docs_markers(OUT)
    page = tmp_path / "page.md"
    page.write_text(f"intro\n{begin}\nold table\n{end}\nafter\n")
    splice_tables(page, "| new |\n", OUT)
    assert page.read_text() == f"intro\n{begin}\n| new |\n{end}\nafter\n"


def test_a_page_without_the_markers_is_refused_and_left_alone(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("no markers here\n")
    with pytest.raises(SystemExit, match="ranode_restarts tables: begin"):
        splice_tables(page, "| new |\n", OUT)
    assert page.read_text() == "no markers here\n"
