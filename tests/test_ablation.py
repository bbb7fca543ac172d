"""benchmarks/ablation.py keeps every finished run, skips it next time and summarises what it has (the
training itself is replaced by a stub here: the recipe is tested in test_train / test_learning)."""

import importlib.util
import json
import statistics
import sys

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

spec = importlib.util.spec_from_file_location("ablation", ROOT / "benchmarks" / "ablation.py")
ablation = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation)


def fake_train(calls):
    def train_one(variant, seed, data, extra, threads):
        calls.append((variant, seed))
        r1 = 10.0 * (ablation.VARIANTS.index(variant) + 1) + seed  # distinct per run, so the means are checkable
        return {"variant": variant, "seed": seed, "overrides": extra, "data": ablation.DATA, "threads": threads,
                "device": "cpu", "code": ablation.CODE,
                "results": {"all-search single-shot": {"R1": r1, "mAP": r1 + 0.5}}}
    return train_one


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """No data written, no recipe run: train_one is fake_train, which lists the (variant, seed) it trains."""
    monkeypatch.setattr("mcja_hub.data.generate_synthetic", lambda *a, **k: tmp_path / "data")
    trained = []
    monkeypatch.setattr(ablation, "train_one", fake_train(trained))
    return trained


def run(monkeypatch, capsys, tmp_path, *args):
    monkeypatch.setattr(sys, "argv", ["ablation.py", "--runs", str(tmp_path), *args])
    ablation.main()
    return json.loads(capsys.readouterr().out)


def test_runs_are_kept_skipped_and_summarised(calls, monkeypatch, capsys, tmp_path):
    out = run(monkeypatch, capsys, tmp_path, "--seeds", "2", "optim.epochs=1")
    assert calls == [(v, s) for s in (1, 2) for v in ablation.VARIANTS]  # seed by seed
    assert out["missing"] == [] and len(list(tmp_path.glob("*-seed*.json"))) == 8
    full = out["results"]["full"]["all-search single-shot"]
    assert full["R1_mean"] == pytest.approx(statistics.mean([41.0, 42.0]))
    assert full["R1_std"] == pytest.approx(statistics.pstdev([41.0, 42.0]))
    assert full["mAP_mean"] == pytest.approx(42.0)

    calls.clear()  # a third seed trains only the new runs; the table then has 3 seeds
    out = run(monkeypatch, capsys, tmp_path, "--seeds", "3", "optim.epochs=1")
    assert calls == [(v, 3) for v in ablation.VARIANTS]
    assert out["results"]["baseline"]["all-search single-shot"]["R1_mean"] == pytest.approx(12.0)

    (tmp_path / "maa-seed3.json").unlink()  # a failing run stops the table, naming itself
    monkeypatch.setattr(ablation, "train_one", lambda *a: (_ for _ in ()).throw(RuntimeError("maa seed 3 failed")))
    with pytest.raises(SystemExit, match="maa seed 3 failed"):
        run(monkeypatch, capsys, tmp_path, "--seeds", "3", "optim.epochs=1")


def test_runs_of_other_overrides_are_refused(calls, monkeypatch, capsys, tmp_path):
    run(monkeypatch, capsys, tmp_path, "--seeds", "1", "optim.epochs=1")
    with pytest.raises(SystemExit, match=r"made with overrides \['optim.epochs=1'\].*give another --runs"):
        run(monkeypatch, capsys, tmp_path, "--seeds", "1", "optim.epochs=2")


def test_report_names_missing_runs_and_trains_none(calls, monkeypatch, capsys, tmp_path):
    run(monkeypatch, capsys, tmp_path, "--seeds", "1")
    (tmp_path / "maa-seed1.json").unlink()  # as if the sitting had been stopped before this run ended
    calls.clear()
    out = run(monkeypatch, capsys, tmp_path, "--seeds", "2", "--report")
    assert calls == []
    assert out["missing"] == ["maa-seed1"] + [f"{v}-seed2" for v in ablation.VARIANTS]
    assert sorted(out["results"]) == ["baseline", "full", "maa_cmr"]  # no row for a variant without runs


def test_runs_of_another_device_are_not_added_to(calls, monkeypatch, capsys, tmp_path):
    run(monkeypatch, capsys, tmp_path, "--seeds", "1")
    monkeypatch.setattr(ablation, "DEVICE", "NVIDIA H200")  # the same folder, continued on a GPU
    with pytest.raises(SystemExit, match=r"trained on \['cpu'\], this machine trains on NVIDIA H200"):
        run(monkeypatch, capsys, tmp_path, "--seeds", "2")
    assert run(monkeypatch, capsys, tmp_path, "--seeds", "1", "--report")["devices"] == ["cpu"]


def test_runs_of_other_code_are_not_added_to(calls, monkeypatch, capsys, tmp_path):
    run(monkeypatch, capsys, tmp_path, "--seeds", "1")
    monkeypatch.setattr(ablation, "CODE", "0123456789abcdef")  # mcja_hub / recipes edited between sittings
    with pytest.raises(SystemExit, match=r"trained by other code"):
        run(monkeypatch, capsys, tmp_path, "--seeds", "2")


def test_code_fingerprint_follows_the_package(monkeypatch, tmp_path):
    for rel in ("mcja_hub/a.py", "recipes/train.py", "recipes/configs/x.yaml", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x = 1\n")
    monkeypatch.setattr(ablation, "ROOT", tmp_path)
    before = ablation.code_fingerprint()
    (tmp_path / "README.md").write_text("docs change nothing a run executes\n")
    assert ablation.code_fingerprint() == before
    (tmp_path / "mcja_hub/a.py").write_text("x = 2\n")
    assert ablation.code_fingerprint() != before


def test_readme_table_is_what_the_kept_runs_give():
    """The README's ablation table and benchmarks/results/ablation.json are the summary of the committed run
    records (for the seeds ablation.json names), to the digit shown: no number without its runs."""
    saved = json.loads((ROOT / "benchmarks" / "results" / "ablation.json").read_text())
    runs = ablation.load_runs(ROOT / saved["runs"], saved["overrides"])
    assert saved["missing"] == [f"{v}-seed{s}" for s in saved["seeds"] for v in ablation.VARIANTS
                                if (v, s) not in runs]
    expected = {v: ablation.summarise([runs[v, s] for s in saved["seeds"] if (v, s) in runs])
                for v in ablation.VARIANTS}
    assert saved["results"] == expected

    readme = (ROOT / "README.md").read_text().split("### Ablation on synthetic data")[1]
    rows = [line for line in readme.splitlines() if line.startswith("| ") and "±" in line][:len(ablation.VARIANTS)]
    assert len(rows) == len(ablation.VARIANTS), "the README's ablation table has a row per variant"
    columns = [("all-search single-shot", "R1"), ("all-search single-shot", "mAP"),
               ("all-search multi-shot", "R1"), ("all-search multi-shot", "mAP")]
    for variant, row in zip(ablation.VARIANTS, rows):  # rounded once, from the runs (not from the 2-digit JSON)
        values = {(s, m): [runs[variant, seed]["results"][s][m] for seed in saved["seeds"] if (variant, seed) in runs]
                  for s, m in columns}
        shown = [f"{statistics.mean(v):.1f} ± {statistics.pstdev(v):.1f}" for v in values.values()]
        assert [c.strip() for c in row.strip("| ").split("|")[1:]] == shown, (variant, row)
