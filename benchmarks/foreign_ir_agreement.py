"""The README's foreign-IR figure: maps of a plain ``ov.convert_model`` IR (Recipro-CAM inserted by otx_xai)
against otx_xai's own export of the same weights, per torchvision model.

Random weights with calibrated batch-norm statistics (the tests' builders, ``tests/foreign_irs.py``),
3 labels, 96×96, 16 noise images; prints the largest grey-level difference, how many map pixels differ
and the largest logit difference, and whether every model is within 1 grey level (the goal):

    PYTHONPATH=src python benchmarks/foreign_ir_agreement.py resnet18 mobilenet_v3_small densenet121
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _machine import header
from _tables import markdown_table
from foreign_irs import calibrated_torchvision, own_export_of, random_images, save_plain_ir
from otx_xai.openvino.foreign_metadata import ForeignIROptions
from otx_xai.openvino.inference import IRModel

LABELS = ["a", "b", "c"]
FLAGS = ForeignIROptions(labels=LABELS, mean=[0, 0, 0], std=[1, 1, 1], input_size=[96, 96])


def agreement(name: str, root: Path) -> tuple[str, int, str, str]:
    """model, max grey-level difference, differing map pixels, max logit difference."""
    net = calibrated_torchvision(name, len(LABELS))
    foreign = IRModel(save_plain_ir(net, root / f"{name}.xml"), foreign=FLAGS)
    own = IRModel(own_export_of(name, net, LABELS, root))
    batch = random_images(16, seed=5)
    got, expected = foreign.infer(batch), own.infer(batch)
    difference = np.abs(got["saliency_map"].astype(int) - expected["saliency_map"].astype(int))
    logits = float(np.abs(got["logits"] - expected["logits"]).max())
    return name, int(difference.max()), f"{int((difference > 0).sum())} / {difference.size}", f"{logits:.2g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="torchvision classification model names")
    names = parser.parse_args().models
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    print(header("A plain ov.convert_model IR, Recipro-CAM inserted, vs otx_xai's own export"))
    with tempfile.TemporaryDirectory() as directory:
        rows = [agreement(name, Path(directory)) for name in names]
    print(markdown_table(["model", "max grey-level difference", "differing map pixels", "max logit difference"],
                         rows))
    worst = max(row[1] for row in rows)
    print(f"\nMaps within {worst} grey level(s) of the own export over {len(rows)} models: goal (≤ 1) "
          f"{'met' if worst <= 1 else 'NOT met'}")


if __name__ == "__main__":
    main()
