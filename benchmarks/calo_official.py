"""Our CaloChallenge metrics against the official ``evaluate.py`` on the same pair of files.

The official code (CaloChallenge/homepage, folder code/) is not part of the package: this
script takes it from a git snapshot (`--mirror`, a bare clone), writes it to a temporary folder
and runs it in a subprocess, so its global settings (float64 default dtype, LaTeX text) never
touch this process.

- Separation powers: ``evaluate.py --mode hist-chi`` on copies of the two files (it writes a
  pickle beside the reference, so never on the originals) against
  `generative.calo.metrics.challenge_separation_powers`.
- Classifier: the official network and training functions (``DNN``, ``ttv_split``,
  ``train_and_evaluate_cls``, ``evaluate_cls`` with its calibration) on `--classifier-events`
  showers of each file, for `--seeds` seeds, against `classifier_test` with
  `ClassifierConfig.challenge()`, both for `--classifier-epochs` epochs. The official split for
  dataset 1 wants 121k showers per file; with fewer it is given the fractions 0.6/0.2/0.2 it
  uses for other sizes. AUCs agree when their difference is within the seed spread. The
  official classifier runs in float64 (``torch.set_default_dtype``) and fails when both files
  are float32, as the files of ../shared/data/calo are; the generated copy is float64.

Writes benchmarks/results/calo_official.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from generative.calo.classifier import ClassifierConfig, classifier_test
from generative.calo.features import high_level_features, high_level_inputs, low_level_inputs
from generative.calo.geometry import load_dataset_geometry
from generative.calo.io import read_showers, write_showers
from generative.calo.metrics import challenge_separation_powers
from generative.fileio import write_atomic
from generative.training import TrainingConfig

REPO = Path(__file__).resolve().parents[1]
MIRROR = Path("/work/.mirror/CaloChallenge+homepage/repo")
FILES = (
    "evaluate.py",
    "evaluate_plotting_helper.py",
    "HighLevelFeatures.py",
    "XMLHandler.py",
    "resnet.py",
    "binning_dataset_1_photons.xml",
)

#: no LaTeX on this machine: the official code's usetex setting is ignored (text only, numbers
#: unaffected); prefixed to every script that imports the official code
NO_TEX = """
import matplotlib.pyplot as plt
_rc = plt.rc
plt.rc = lambda group, **kwargs: None if group == "text" else _rc(group, **kwargs)
"""

#: runs ``evaluate.py`` as its command line would, with the arguments given
OFFICIAL_MAIN = (
    NO_TEX
    + """
import runpy, sys
sys.argv = ["evaluate.py", *sys.argv[1:]]
runpy.run_path("evaluate.py", run_name="__main__")
"""
)

#: runs the official classifier functions; prints one JSON line {"auc", "jsd"}
OFFICIAL_CLASSIFIER = (
    NO_TEX
    + """
import argparse, json, sys
import h5py, numpy as np, torch
import evaluate as E
import HighLevelFeatures as HLF
mode, generated, reference, n, epochs, seed, out = sys.argv[1:8]
n, epochs, seed = int(n), int(epochs), int(seed)
np.random.seed(seed)
torch.manual_seed(seed)
def arrays(path, label):
    f = h5py.File(path, "r")
    hlf = HLF.HighLevelFeatures("photon", filename="binning_dataset_1_photons.xml")
    shower = f["showers"][:]
    shower = np.where(shower < 1.0, 0.0, shower)
    hlf.CalculateFeatures(shower)
    hlf.Einc = f["incident_energies"][:]
    if mode == "low":
        return E.prepare_low_data_for_classifier(f, hlf, label, normed=False, threshold=1.0)
    return E.prepare_high_data_for_classifier(f, hlf, label, threshold=1.0)
source, ref = arrays(generated, 0.0)[:n], arrays(reference, 1.0)[:n]
train, test, val = E.ttv_split(source, ref)
args = argparse.Namespace(cls_n_epochs=epochs, mode="cls-" + mode, dataset="1-photons",
                          output_dir=out, save_mem=False, device=torch.device("cpu"))
model = E.DNN(num_layer=2, num_hidden=2048, input_dim=train.shape[1] - 1)
optimizer = torch.optim.Adam(model.parameters(), lr=2e-4)
loader = lambda d, s: torch.utils.data.DataLoader(
    torch.utils.data.TensorDataset(torch.tensor(d)), batch_size=1000, shuffle=s)
E.train_and_evaluate_cls(model, loader(train, True), loader(test, False), optimizer, args)
model = E.load_classifier(model, args)
with torch.no_grad():
    _, auc, jsd = E.evaluate_cls(model, loader(val, False), args, final_eval=True,
                                 calibration_data=loader(test, False))
print(json.dumps({"auc": float(auc), "jsd": float(jsd)}))
"""
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--generated", type=Path, required=True)
    parser.add_argument("--mirror", type=Path, default=MIRROR)
    parser.add_argument("--classifier-events", type=int, default=5000)
    parser.add_argument("--classifier-epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--no-classifier", action="store_true")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    return parser.parse_args(argv)


def extract_official(mirror: Path, folder: Path) -> str:
    """Write the official evaluation code into `folder`; return the snapshot's commit."""
    for name in FILES:
        text = subprocess.run(
            ["git", "-C", str(mirror), "show", f"HEAD:code/{name}"],
            capture_output=True,
            check=True,
        ).stdout
        (folder / name).write_bytes(text)
    return subprocess.run(
        ["git", "-C", str(mirror), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()


def _official_name(label: str) -> str:
    """Our feature name for a label of the official histogram_chi2 file."""
    label = label.strip().rstrip(":")
    if label == "Etot / Einc":
        return "E_tot_over_E_inc"
    if label == "Voxel distribution":
        return "voxel_energy"
    match = re.fullmatch(r"Etot / Einc at E = ([\d.]+)", label)
    if match:
        return f"E_tot_over_E_inc_at_{int(float(match.group(1)))}_MeV"
    kinds = {"E layer": "E_layer", "EC Eta layer": "EC_eta_layer", "EC Phi layer": "EC_phi_layer"}
    kinds |= {"Width Eta layer": "width_eta_layer", "Width Phi layer": "width_phi_layer"}
    for prefix, ours in kinds.items():
        match = re.fullmatch(rf"{prefix} (\d+)", label)
        if match:
            return f"{ours}_{match.group(1)}"
    return label


def official_separation_powers(folder: Path, generated: Path, reference: Path) -> dict[str, float]:
    """Run ``evaluate.py --mode hist-chi`` and read its separation powers."""
    out = folder / "hist"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    options = ["-i", str(generated), "-r", str(reference), "-m", "hist-chi", "-d", "1-photons"]
    subprocess.run(
        [sys.executable, "-c", OFFICIAL_MAIN, *options, "--output_dir", str(out)],
        cwd=folder,
        env=env,
        check=True,
        capture_output=True,
    )
    text = (out / "histogram_chi2_1-photons.txt").read_text()
    pairs = re.findall(r"^([^\n]+?):\s*\n\s*([-+0-9.eE]+|nan)\s*$", text, flags=re.MULTILINE)
    return {_official_name(label): float(value) for label, value in pairs}


def official_auc(folder: Path, mode: str, generated: Path, reference: Path, args, seed) -> dict:
    """The official classifier's calibrated AUC and JSD for one seed."""
    out = folder / f"cls-{mode}-{seed}"
    out.mkdir()
    options = [mode, str(generated), str(reference), str(args.classifier_events)]
    options += [str(args.classifier_epochs), str(seed), str(out)]
    result = subprocess.run(
        [sys.executable, "-c", OFFICIAL_CLASSIFIER, *options],
        cwd=folder,
        env={**os.environ, "MPLBACKEND": "Agg"},
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def our_auc(mode: str, generated, reference, geometry, args, seed) -> dict[str, float]:
    """Our classifier test with the challenge's network for one seed."""
    n = args.classifier_events
    gen, ref = generated.take(slice(0, n)), reference.take(slice(0, n))
    if mode == "low":
        x_gen, x_ref = low_level_inputs(gen), low_level_inputs(ref)
    else:
        x_gen = high_level_inputs(high_level_features(gen, geometry), gen.energies)
        x_ref = high_level_inputs(high_level_features(ref, geometry), ref.energies)
    challenge = ClassifierConfig.challenge()
    config = ClassifierConfig(
        n_hidden_layers=challenge.n_hidden_layers,
        width=challenge.width,
        preprocessing=challenge.preprocessing,
        training=TrainingConfig.coerce(
            {"epochs": args.classifier_epochs}, defaults=challenge.training
        ),
    )
    result = classifier_test(x_ref, x_gen, config=config, random_state=seed)
    return {"auc": result.auc, "jsd": result.jsd}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Compare and write the JSON."""
    args = parse_args(argv)
    started, cpu = time.perf_counter(), time.process_time()
    load_start = os.getloadavg()
    geometry = load_dataset_geometry("1-photons")
    reference, generated = read_showers(args.reference), read_showers(args.generated)
    report: dict[str, Any] = {"reference": str(args.reference), "generated": str(args.generated)}
    with tempfile.TemporaryDirectory(prefix="calo-official-") as tmp:
        folder = Path(tmp)
        report["official_commit"] = extract_official(args.mirror, folder)
        # copies (the official code writes a pickle beside the reference); the generated one in
        # float64: the official classifier trains in float64 and fails on two float32 files
        ref_copy = write_showers(folder / "reference.h5", reference)
        gen_copy = write_showers(folder / "generated.h5", generated, dtype=np.float64)
        official = official_separation_powers(folder, gen_copy, ref_copy)
        ours = challenge_separation_powers(read_showers(ref_copy), read_showers(gen_copy), geometry)
        rows = {}
        for name, value in official.items():
            mine = ours.get(name)
            rel = None if mine is None or value == 0 else abs(mine - value) / abs(value)
            rows[name] = {"official": value, "ours": mine, "relative_difference": rel}
        finite = [r["relative_difference"] for r in rows.values() if r["relative_difference"]]
        report["separation_powers"] = {
            "features": rows,
            "max_relative_difference": max(finite) if finite else 0.0,
            "n_features": len(rows),
            "missing_in_ours": [k for k, r in rows.items() if r["ours"] is None],
        }
        if not args.no_classifier:
            report["classifier"] = {
                "events_per_file": args.classifier_events,
                "epochs": args.classifier_epochs,
                "seeds": args.seeds,
            }
            for mode in ("low", "high"):
                off = [official_auc(folder, mode, gen_copy, ref_copy, args, s) for s in args.seeds]
                mine = [our_auc(mode, generated, reference, geometry, args, s) for s in args.seeds]
                a_off, a_mine = [r["auc"] for r in off], [r["auc"] for r in mine]
                spread = float(np.std(a_off + a_mine, ddof=1)) if len(args.seeds) > 1 else None
                report["classifier"][f"cls-{mode}"] = {
                    "official": off,
                    "ours": mine,
                    "official_mean_auc": float(np.mean(a_off)),
                    "our_mean_auc": float(np.mean(a_mine)),
                    "seed_spread_auc": spread,
                    "agree_within_spread": None
                    if spread is None
                    else bool(abs(np.mean(a_off) - np.mean(a_mine)) <= 2 * spread),
                }
                print(f"cls-{mode}: {report['classifier'][f'cls-{mode}']}", file=sys.stderr)
    report["load_average_start_end"] = [list(load_start), list(os.getloadavg())]
    report["wall_seconds"] = time.perf_counter() - started
    report["cpu_seconds_this_process"] = time.process_time() - cpu
    path = write_atomic(args.output / "calo_official.json", json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}", file=sys.stderr)
    return report


if __name__ == "__main__":
    main()
