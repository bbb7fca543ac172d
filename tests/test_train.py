"""The training recipe: exact resume, atomic checkpoints, NaN guard, config errors, 2 processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TRAIN_RECIPE as TRAIN
from conftest import load_recipe
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
TINY = ["backbone=resnet18", "input_size=[64,32]", "mda_layers=[0,1,1,0]", "p=4", "k=4", "num_workers=0",
        "eval.modes=[all]", "eval.shots=[1]", "eval.trials=1", "epochs=3", "milestones=[1]", "lr=1e-3",
        "pretrained_backbone=false", "synthetic=true", "seed=9"]  # seed 9: epochs of 11, 10 and 9 steps on tiny_data


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from mcja_hub.data import generate_synthetic
    return generate_synthetic(tmp_path_factory.mktemp("d") / "sysu", "sysu_mm01", ids=12, seed=1, size=(64, 32),
                              images_per_camera=(3, 5), workers=1)


def run(args, tmp_path, check=True):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf-datasets"))
    proc = subprocess.run([sys.executable, str(TRAIN), *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if check and proc.returncode != 0:
        raise AssertionError(f"train.py failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def weights(folder):
    return load_file(str(Path(folder) / "model" / "model.safetensors"))


def steps_of(out):
    return sorted(int(p.name[5:]) for p in (Path(out) / "checkpoints").glob("step_*"))


@pytest.fixture(scope="module")
def straight(tiny_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("straight")
    run(["--data-dir", str(tiny_data), "output_dir=" + str(tmp / "a"), *TINY, "report_to=csv"], tmp)
    return tmp / "a"


def epoch_ends(data) -> list[int]:
    """Global step at the end of each epoch of TINY, from the sampler itself."""
    from mcja_hub.data.sampler import PKSampler
    from mcja_hub.data.layouts import read_sysu
    sampler, ends = PKSampler([r.label for r in read_sysu(data)["train"]], 4, 4, seed=9), [0]
    for epoch in range(3):
        sampler.set_epoch(epoch)
        ends.append(ends[-1] + len(sampler))
    return ends[1:]


def test_straight_run_outputs(straight, tiny_data):
    ends = epoch_ends(tiny_data)
    assert len(set(b - a for a, b in zip([0] + ends, ends))) > 1  # the epochs differ in length
    assert steps_of(straight) == ends  # one checkpoint per epoch
    assert (straight / "checkpoints" / "latest").read_text() == f"step_{ends[-1]:08d}"
    report = json.loads((straight / "results.json").read_text())
    assert list(report["results"]) == ["all-search single-shot"]
    card = (straight / "model" / "README.md").read_text()
    assert "model-index" in card and "synthetic sysu_mm01 layout" in card
    rows = (straight / "logs" / "train.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,loss_id,loss_cmr,batch_cross_modal_r1,lr,epoch") and len(rows) >= 2
    r1 = [float(r.split(",")[4]) for r in rows[1:]]
    assert all(0 <= v <= 1 for v in r1) and len(set(r1)) > 1  # a share of the batch's queries, per window


def test_exact_resume_at_epoch_boundary(straight, tiny_data, tmp_path):
    first = epoch_ends(tiny_data)[0]
    out = tmp_path / "b"
    run(["--data-dir", str(tiny_data), f"output_dir={out}", *TINY, f"max_steps={first}"], tmp_path)  # "killed"
    assert steps_of(out) == [first]
    run(["--data-dir", str(tiny_data), f"output_dir={out}", *TINY, "--resume", "latest"], tmp_path)
    a, b = weights(straight), weights(out)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)


def test_exact_resume_mid_epoch_in_a_later_epoch(straight, tiny_data, tmp_path, monkeypatch):
    """Killed 4 steps into the third epoch, which is shorter than the first: the checkpoint records
    the position in that epoch's own batch list, and the resumed run ends bit-identical. The kill
    step is also a save_every_steps step: it is saved once."""
    recipe = load_recipe()
    saved, save = [], recipe.save_checkpoint

    def recording(accelerator, root, state, keep):
        saved.append(state["global_step"])
        return save(accelerator, root, state, keep)

    monkeypatch.setattr(recipe, "save_checkpoint", recording)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    ends = epoch_ends(tiny_data)
    stop = ends[1] + 4
    out = tmp_path / "c"
    args = ["--data-dir", str(tiny_data), f"output_dir={out}", *TINY]
    recipe.main(args + [f"max_steps={stop}", f"save_every_steps={stop}", "report_to=csv"])
    assert saved == [ends[0], ends[1], stop]  # two epoch ends, then the kill step once
    state = json.loads((out / "checkpoints" / f"step_{stop:08d}" / "trainer_state.json").read_text())
    assert (state["epoch"], state["step_in_epoch"]) == (2, 4)
    logged = (out / "logs" / "train.csv").read_text().splitlines()
    recipe.main(args + ["--resume", "latest", "report_to=csv"])  # key=value after --resume works too
    a, b = weights(straight), weights(out)
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)
    # the log goes on where it stopped: the killed run's rows first, then the rest up to the last step
    after = (out / "logs" / "train.csv").read_text().splitlines()
    assert after[:len(logged)] == logged and int(after[-1].split(",")[0]) == ends[-1] > stop
    assert not (out / ".lock").exists()


def test_resume_refuses_changed_config_and_missing_checkpoint(straight, tiny_data, tmp_path):
    p = run(["--data-dir", str(tiny_data), f"output_dir={straight}", *TINY, "mda_m=3", "--resume", "latest"], tmp_path, check=False)
    assert p.returncode != 0 and "differs from the checkpoint's in ['model.mda_m: 2 -> 3']" in p.stderr
    p = run(["--data-dir", str(tiny_data), f"output_dir={straight}", *TINY, "erase_p=0.3", "--resume", "latest"],
            tmp_path, check=False)  # named, but the augmentation is part of what was trained
    assert p.returncode != 0 and "differs from the checkpoint's in ['augment.erase_p: 0.5 -> 0.3']" in p.stderr
    p = run(["--data-dir", str(tiny_data), f"output_dir={tmp_path / 'none'}", *TINY, "--resume", "latest"], tmp_path, check=False)
    assert p.returncode != 0 and "no checkpoint in" in p.stderr


def test_resume_of_a_flat_config_checkpoint_is_refused_clearly(straight, tiny_data, tmp_path, monkeypatch):
    """Checkpoints of the recipe before the nested config hold a flat config: named, not misread."""
    import shutil

    recipe = load_recipe()
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    out = tmp_path / "old"
    shutil.copytree(straight / "checkpoints", out / "checkpoints")
    state_file = out / "checkpoints" / (out / "checkpoints" / "latest").read_text() / "trainer_state.json"
    state = json.loads(state_file.read_text())
    state["config"] = {k.rsplit(".", 1)[-1]: v for k, v in recipe.flatten(state["config"]).items()}  # the old kind
    state_file.write_text(json.dumps(state))
    with pytest.raises(SystemExit, match="written by an older recipe \\(a flat config\\)"):
        recipe.main(["--data-dir", str(tiny_data), f"output_dir={out}", *TINY, "--resume", "latest"])


def test_resume_records_named_changes_and_refuses_unnamed_ones(straight, tiny_data, tmp_path):
    import shutil
    out = tmp_path / "r"
    shutil.copytree(straight / "checkpoints", out / "checkpoints")
    (tmp_path / "lower-lr.yaml").write_text("optim:\n  lr: 0.0005\n")
    base = ["--data-dir", str(tiny_data), f"output_dir={out}", *TINY]
    no_lr = [a for a in base if not a.startswith("lr=")]  # the file's lr, not the command line's
    p = run(no_lr + ["--config", str(tmp_path / "lower-lr.yaml"), "--resume", "latest"], tmp_path, check=False)
    assert p.returncode != 0 and "['optim.lr: 0.001 -> 0.0005'] but the command line does not name them" in p.stderr
    data = shutil.copytree(tiny_data, tmp_path / "data")  # the same files (mtimes kept) ...
    (data / "cam1" / "extra.jpg").write_bytes((next(data.glob("cam1/*/*.jpg"))).read_bytes())  # ... plus one
    p = run(["--data-dir", str(data), *base[2:], "--resume", "latest"], tmp_path, check=False)
    assert p.returncode != 0 and "is not the data the checkpoint was trained on" in p.stderr
    run(base + ["--resume", "latest", "epochs=4", "lr=5e-4"], tmp_path)  # named: allowed, and recorded
    state = json.loads((out / "checkpoints" / (out / "checkpoints" / "latest").read_text() / "trainer_state.json").read_text())
    assert [(c["field"], c["from"], c["to"]) for c in state["changes"]] == [("optim.lr", 0.001, 0.0005), ("optim.epochs", 3, 4)]
    assert state["epoch"] == 4 and state["config"]["optim"]["lr"] == 0.0005
    assert "optim.lr 0.001 -> 0.0005 at step" in (out / "model" / "README.md").read_text()


def test_config_errors(tiny_data, tmp_path):
    p = run(["--data-dir", str(tiny_data), "learning_rate=1"], tmp_path, check=False)
    assert p.returncode == 2 and "unknown config key 'learning_rate'" in p.stderr
    p = run(["epochs=1"], tmp_path, check=False)
    assert p.returncode == 2 and "--data-dir is required" in p.stderr


def test_checkpoint_is_atomic(tmp_path):
    """A save that dies half-way leaves `latest` on the previous complete checkpoint."""
    recipe = load_recipe()

    class FakeAccelerator:
        is_main_process = True
        fail = False

        def wait_for_everyone(self):
            pass

        def save_state(self, path):
            Path(path).mkdir(parents=True)
            (Path(path) / "model.safetensors").write_bytes(b"partial")
            if self.fail:
                raise KeyboardInterrupt("killed while writing")
            (Path(path) / "optimizer.bin").write_bytes(b"done")

    acc, root = FakeAccelerator(), tmp_path / "checkpoints"
    state = {"epoch": 1, "step_in_epoch": 0, "global_step": 10, "config": {}}
    recipe.save_checkpoint(acc, root, state, keep=3)
    acc.fail = True
    with pytest.raises(KeyboardInterrupt):
        recipe.save_checkpoint(acc, root, dict(state, global_step=20), keep=3)
    assert (root / "latest").read_text() == "step_00000010"
    assert recipe.resolve_resume(tmp_path, "latest") == root / "step_00000010"
    assert not (root / "step_00000020").exists()  # only the .tmp folder, never taken for a checkpoint
    with pytest.raises(SystemExit, match="not a complete checkpoint"):
        recipe.resolve_resume(tmp_path, str(root / "step_00000020.tmp"))
    acc.fail = False  # the next save replaces the stale temporary folder
    recipe.save_checkpoint(acc, root, dict(state, global_step=20), keep=1)
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_00000020"]


def test_nan_loss_stops_with_clear_message(tiny_data, tmp_path, monkeypatch):
    recipe = load_recipe()
    calls = {"n": 0}
    real = recipe.cmr_loss

    def poisoned(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 4 else loss

    monkeypatch.setattr(recipe, "cmr_loss", poisoned)
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    out = tmp_path / "nan"
    with pytest.raises(SystemExit, match=r"non-finite loss at epoch 1, step 4 .*stopped without saving. Last good checkpoint: none"):
        recipe.main(["--data-dir", str(tiny_data), f"output_dir={out}", *TINY, "save_every_steps=100"])
    assert not (out / "checkpoints").exists() or not list((out / "checkpoints").glob("step_*"))


@pytest.mark.slow
def test_two_cpu_processes(tiny_data, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_CACHE=str(tmp_path / "hf"))
    out = tmp_path / "ddp"
    # On a machine without GPUs the torchrun path (--multi_gpu) gives one CPU process per rank (gloo);
    # `--cpu` always selects accelerate's single-process launcher.
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", str(TRAIN), "--data-dir", str(tiny_data), f"output_dir={out}", *TINY, "epochs=1"],
                          capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x 2 process(es)" in proc.stdout
    assert (out / "model" / "model.safetensors").is_file()
    ckpt = next((out / "checkpoints").glob("step_*"))
    assert {p.name for p in ckpt.glob("random_states_*")} == {"random_states_0.pkl", "random_states_1.pkl"}
    # the ranks trained on disjoint batches: the run's steps per epoch are half the single-process count
    single = int(proc.stdout.split(" steps/epoch")[0].split(", ")[-1])
    from mcja_hub.data.sampler import PKSampler
    from mcja_hub.data.layouts import read_sysu
    labels = [r.label for r in read_sysu(tiny_data)["train"]]
    full = PKSampler(labels, 4, 4, seed=8)
    assert single == len(full) // 2
    ranks = [list(PKSampler(labels, 4, 4, seed=8, num_replicas=2, rank=r)) for r in (0, 1)]
    assert not {tuple(b) for b in ranks[0]} & {tuple(b) for b in ranks[1]}


def test_config_values_are_typed(capsys):
    recipe = load_recipe()
    cfg, _ = recipe.load_config(["--data-dir", "x", "lr=1e-3", "epochs=3", "select_best=true", "milestones=[2]"])
    assert cfg.optim.lr == 0.001 and isinstance(cfg.optim.lr, float) and cfg.optim.epochs == 3
    assert cfg.eval.select_best is True and cfg.optim.milestones == [2]
    for bad, msg in (("epochs=2.5", "'optim.epochs': expected an integer like 140, got 2.5"),
                     ("lr=fast", "'optim.lr': expected a number like"),
                     ("milestones=3", "'optim.milestones': expected a list"),
                     ("select_best=maybe", "'eval.select_best': expected true or false"),
                     ("input_size=[64,32,3]", "'model.input_size': expected a list of 2 like (384, 192)"),
                     ("model.last_stride=3", "MCJAConfig.last_stride must be 1 or 2, got 3"),
                     ("augment.maa_p=1.5", "AugmentConfig.maa_p must be in [0, 1], got 1.5")):
        with pytest.raises(SystemExit):
            recipe.load_config(["--data-dir", "x", bad])
        assert msg in capsys.readouterr().err


def test_config_is_nested_and_the_yaml_mirrors_it(tmp_path, capsys):
    import yaml

    from mcja_hub import MCJAConfig
    from mcja_hub.augment import AugmentConfig

    recipe = load_recipe()
    synthetic = ["--data-dir", "x", "--config", str(TRAIN.parent / "configs" / "synthetic.yaml")]
    cfg, _ = recipe.load_config(synthetic)
    assert isinstance(cfg.model, MCJAConfig) and isinstance(cfg.augment, AugmentConfig)
    assert cfg.model.input_size == cfg.augment.size == (64, 32) and cfg.augment.pad == 2 and cfg.data.k == 8
    # a nested file, a dotted key and a bare key set the same field
    (tmp_path / "m.yaml").write_text("model:\n  mda_m: 5\n")
    same = [recipe.load_config(synthetic + extra)[0] for extra in
            (["--config", str(tmp_path / "m.yaml")], ["model.mda_m=5"], ["mda_m=5"])]
    assert same[0] == same[1] == same[2] and same[0].model.mda_m == 5 and same[0] != cfg
    # what a run writes as train_config.yaml is a --config file that gives back the same config
    (tmp_path / "written.yaml").write_text(yaml.safe_dump(recipe.to_dict(same[0])))
    assert recipe.load_config(["--data-dir", "x", "--config", str(tmp_path / "written.yaml")])[0] == same[0]
    # derived keys are refused, old flat names still work with a message (maa changed meaning: named)
    for bad, msg in (("augment.size=[32,16]", "'augment.size' is not set by hand: it follows model.input_size"),
                     ("num_classes=3", "'model.num_classes' is not set by hand"),
                     ("maa=false", "'maa' is now 'augment.maa_p'")):
        with pytest.raises(SystemExit):
            recipe.load_config(["--data-dir", "x", bad])
        assert msg in capsys.readouterr().err
    cfg, _ = recipe.load_config(["--data-dir", "x", "trial=3", "pretrained=false", "eval_trials=2"])
    assert (cfg.data.split, cfg.model.pretrained_backbone, cfg.eval.trials) == (3, False, 2)
    assert "'trial' is now 'data.split'" in capsys.readouterr().err
    assert recipe.load_config(["--data-dir", "x", "--trial", "4"])[0].data.split == 4  # --split's old name
    # on resume: the model, augmentation, data and seed are fixed; run control is free
    keys = recipe.DEFAULTS
    assert {k for k in keys if k.startswith(("model.", "augment."))} | {"seed", "data.p", "data.split"} <= set(
        recipe.RESUME_MUST_MATCH)
    assert {k for k in keys if k.startswith("run.")} <= set(recipe.RUN_CONTROL)
    assert not set(recipe.RUN_CONTROL) & set(recipe.RESUME_MUST_MATCH)


def test_decoded_images_are_cached_once(tiny_data, tmp_path, monkeypatch):
    from mcja_hub.data import load_vireid
    recipe = load_recipe()
    train = load_vireid("sysu_mm01", tiny_data, cache_dir=tmp_path / "hf")["train"]
    path = recipe.decoded_cache_path(train, (64, 32), main_proc=True)
    assert path.parent == Path(train.cache_files[0]["filename"]).parent  # beside the Arrow data it derives from
    direct = [recipe.TrainImages(train, (64, 32))[i] for i in range(len(train))]
    first = recipe.TrainImages(train, (64, 32), path)
    assert all(first[i][0].equal(direct[i][0]) for i in range(len(train)))  # decodes and writes each image

    def no_decoding(*args):
        raise AssertionError("decoded again")

    monkeypatch.setattr(recipe, "resize", no_decoding)
    later = recipe.TrainImages(train, (64, 32), path)  # a worker of a later epoch, or another process
    for i in range(len(train)):
        image, label, modality = later[i]
        assert image.equal(direct[i][0]) and (label, modality) == direct[i][1:]


@pytest.mark.slow
def test_gpu_benchmark_script_runs(tmp_path):
    # benchmarks/gpu_step.py is run on a lent GPU with minutes to spare: its CPU smoke mode checks it first
    proc = subprocess.run([sys.executable, "gpu_step.py", "--smoke"], capture_output=True, text=True,
                          cwd=ROOT / "benchmarks", env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["recipe_windows"] >= 1 and result["recipe_images_per_s"] > 0 and result["mcja_step_ms"] > 0


def test_output_dir_lock(tmp_path):
    recipe = load_recipe()
    out = tmp_path / "run"
    with recipe.output_lock(out, holder=True):
        assert (out / ".lock").read_text().split()[0] == str(os.getpid())
        with pytest.raises(SystemExit, match=r"is in use by another run \(pid \d+ on host"):
            with recipe.output_lock(out, holder=True):
                pass
    assert not (out / ".lock").exists()  # released
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (out / ".lock").write_text(f"{dead.pid} {__import__('socket').gethostname()}")
    with recipe.output_lock(out, holder=True):  # a stale lock (its process is gone) is taken over
        assert (out / ".lock").read_text().split()[0] == str(os.getpid())
    (out / ".lock").write_text("1 some-other-host")
    with pytest.raises(SystemExit, match="on host some-other-host"):
        with recipe.output_lock(out, holder=True):
            pass


def test_bad_settings_fail_before_the_first_step(tiny_data, tmp_path, monkeypatch, capsys):
    recipe = load_recipe()
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    args = ["--data-dir", str(tiny_data), *TINY]
    for bad, message in (("eval.modes=[outdoor]", "mode must be 'all' or 'indoor'"),
                         ("eval.shots=[3]", "shots must be 1"), ("eval.trials=11", "10 official trials")):
        with pytest.raises(SystemExit, match=f"the final evaluation would fail .*{message}"):
            recipe.main(args + [f"output_dir={tmp_path / 'e'}", bad])
        assert not (tmp_path / "e" / "checkpoints").exists()  # nothing trained
    for bad in ("optim.epochs=0", "optim.epochs=-1", "run.keep_checkpoints=0", "optim.lr=0", "loss.cmr_eps=0",
                "run.log_every=0"):
        with pytest.raises(SystemExit):
            recipe.load_config(["--data-dir", "x", bad])
        assert f"config key {bad.split('=')[0]!r}: expected" in capsys.readouterr().err
    real = recipe.shutil.disk_usage
    monkeypatch.setattr(recipe.shutil, "disk_usage", lambda p: real(p)._replace(free=1 << 20))
    with pytest.raises(SystemExit, match=r"not enough disk for a checkpoint in .*MiB needed, 1 MiB free"):
        recipe.main(args + [f"output_dir={tmp_path / 'd'}"])
