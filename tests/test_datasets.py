"""Loading benchmark files: counts, splits, defaults, and errors that say where."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prover.datasets import (
    DatasetError,
    Problem,
    find_problem,
    load_problems,
    problem_keys,
)

HEADER_TEXT = (
    "import Mathlib\nimport Aesop\n\nset_option maxHeartbeats 0\n\n"
    "open BigOperators Real Nat Topology Rat\n\n"
)


def test_minif2f_has_244_valid_and_244_test() -> None:
    assert len(load_problems("minif2f")) == 488
    valid, test = load_problems("minif2f", "valid"), load_problems("minif2f", "test")
    assert len(valid) == 244 and len(test) == 244
    assert {p.split for p in valid} == {"valid"} and {p.split for p in test} == {"test"}
    assert all(p.formal_statement.endswith(":= by\n") for p in valid + test)


def test_proofnet_counts() -> None:
    problems = load_problems("proofnet")
    assert len(problems) == 371
    assert len(load_problems("proofnet", "valid")) == 185
    assert len(load_problems("proofnet", "test")) == 186
    assert all(p.formal_statement.endswith(":=") for p in problems)


def test_a_record_maps_field_for_field() -> None:
    p = find_problem("minif2f", "amc12a_2019_p21")
    assert p.name == "amc12a_2019_p21" and p.split == "valid"
    assert p.header == HEADER_TEXT
    assert p.formal_statement == (
        "theorem amc12a_2019_p21 (z : ℂ) (h₀ : z = (1 + Complex.I) / Real.sqrt 2) :\n"
        "  ((∑ k : ℤ in Finset.Icc 1 12, z ^ k ^ 2) * (∑ k : ℤ in Finset.Icc 1 12, 1 / z ^ k ^ 2))"
        " = 36 := by\n"
    )
    assert p.informal_prefix.startswith("/-- Let $z=\\frac{1+i}{\\sqrt{2}}.$What is")
    assert p.informal_prefix.endswith("Show that it is \\textbf{(C) }36.-/\n")
    assert p.goal is not None and p.goal.endswith("1 / z ^ k ^ 2 = 36")
    assert p.formal_proof is None


def test_few_shot_records_get_deepseeks_default_header() -> None:
    pool = load_problems("minif2f_valid_few_shot")
    assert len(pool) == 67
    assert all(p.header == HEADER_TEXT and p.goal is None for p in pool)
    assert all(p.formal_proof for p in pool)


def test_unknown_split_names_the_splits_present() -> None:
    with pytest.raises(DatasetError, match=r"split 'dev' \(its splits: test, valid\)"):
        load_problems("minif2f", "dev")


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


GOOD = '{"name": "t1", "split": "test", "formal_statement": "theorem t1 : True := by\\n"}'


def test_a_path_and_minimal_records(tmp_path: Path) -> None:
    f = write(tmp_path / "mine.jsonl", GOOD, "", '{"name": "t2", "formal_statement": "x :="}')
    for source in (f, str(f)):
        problems = load_problems(source)
        assert problems == [
            Problem("t1", "test", HEADER_TEXT, "", "theorem t1 : True := by\n"),
            Problem("t2", "", HEADER_TEXT, "", "x :="),
        ]
    assert [p.name for p in load_problems(f, "test")] == ["t1"]


def test_data_dir_can_be_moved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "custom.jsonl", GOOD)
    monkeypatch.setenv("PROVER_DATA_DIR", str(tmp_path))
    assert [p.name for p in load_problems("custom")] == ["t1"]
    with pytest.raises(DatasetError, match=r"unknown dataset 'other'.*custom"):
        load_problems("other")
    # A published dataset missing there is fetched (here from a closed port: a clear error).
    monkeypatch.setenv("PROVER_DATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PROVER_DATA_URL", "http://127.0.0.1:9/{name}.jsonl")
    with pytest.raises(DatasetError, match=r"could not download the minif2f dataset"):
        load_problems("minif2f")


def test_unknown_dataset_lists_the_known_ones() -> None:
    with pytest.raises(DatasetError, match=r"unknown dataset 'minif2g'.*minif2f.*proofnet"):
        load_problems("minif2g")


def test_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DatasetError, match=re.escape(f"{missing}: no such dataset file")):
        load_problems(str(missing))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"name": "t3", "formal_statement": ', "not valid JSON"),
        ('["t3"]', "expected a JSON object, got list"),
        ('{"name": "t3"}', "missing 'formal_statement'"),
        ('{"name": "t3", "formal_statement": "x", "header": 3}', "'header' must be a string"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path: Path, bad: str, message: str) -> None:
    # The blank line still counts: the bad record is on line 4 of the file.
    f = write(tmp_path / "bad.jsonl", GOOD, GOOD.replace("t1", "t2"), "", bad)
    with pytest.raises(DatasetError) as info:
        load_problems(f)
    assert str(info.value).startswith(f"{f}:4: ")
    assert message in str(info.value)


def test_find_problem_suggests_close_names() -> None:
    with pytest.raises(DatasetError) as info:
        find_problem("minif2f", "mathd_algebra_47")
    text = str(info.value)
    assert "minif2f.jsonl: no problem named 'mathd_algebra_47'" in text
    assert "did you mean" in text and "mathd_algebra_478" in text


def test_find_problem_with_nothing_close() -> None:
    with pytest.raises(DatasetError, match="no problem named 'zzz'; the names are"):
        find_problem("minif2f", "zzz")


def test_repeated_names_must_be_disambiguated() -> None:
    with pytest.raises(DatasetError) as info:
        find_problem("proofnet", "exercise_5_1")
    assert "3 problems are named 'exercise_5_1'" in str(info.value)
    assert "exercise_5_1#1, exercise_5_1#2, exercise_5_1#3" in str(info.value)
    second = find_problem("proofnet", "exercise_5_1#2")
    assert second.formal_statement.startswith("theorem exercise_5_1\n  {f : ℝ → ℝ}")
    for bad in ("exercise_5_1#4", "exercise_5_1#0", "exercise_5_1#x"):
        with pytest.raises(DatasetError, match="occurs 3 time"):
            find_problem("proofnet", bad)


def test_problem_keys_are_unique_and_resolve() -> None:
    problems = load_problems("proofnet")
    keys = problem_keys(problems)
    assert len(set(keys)) == len(problems)
    assert keys.count("exercise_1_13a") == 1 and "exercise_3_4#3" in keys
    for key, problem in zip(keys, problems, strict=True):
        if "#" in key:
            assert find_problem("proofnet", key) == problem
