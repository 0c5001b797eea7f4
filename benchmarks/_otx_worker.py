"""otx_xai's side of ``bench_vs_openvino_xai.py``; runs in the project's pinned env:
``python _otx_worker.py IR.xml INPUTS.npy PRECISION DETECTOR.xml DETECTOR_INPUTS.npy``.

The plain IR is read as an IR otx_xai did not export (``--ir.*`` options: 1000 labels, the input size; the
inputs are already preprocessed) and run as ``otx explain`` runs it: white-box, Recipro-CAM inserted in
memory, ``feature_map`` not computed, the hint chosen per batch size (LATENCY for one image, THROUGHPUT
for batches); black-box, the IR without the XAI outputs, RISE and AISE explaining the top class
(PREDICTIONS), perturbed images in batches of 32 through the IR's request queue. The detector IR (otx_xai's
own export, plain) is explained by AISE per box (speed preset: 20 evaluations × widths 1/7, 1/4, 1 of the
box, one inference each), the two highest-scoring boxes of one image.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from _counting import CountingRunner
from _limit import best_limit
from _worker_loop import serve
from otx_xai.explain.black_box.presets import BlackBoxConfig
from otx_xai.explain.black_box.protocol import black_box_method
from otx_xai.explain.black_box.runners import ir_runner
from otx_xai.explain.config import ExplainConfig, TargetExplainGroup
from otx_xai.openvino.foreign_metadata import ForeignIROptions
from otx_xai.openvino.inference import IRModel
from otx_xai.openvino.metadata import XAI_OUTPUTS
from otx_xai.quiet import quiet

PREDICTIONS = ExplainConfig(target_explain_group=TargetExplainGroup.PREDICTIONS)
BATCH = 8  # the white-box batch case: batches of 8 images streamed as `otx explain` streams them
STREAMED_BATCHES = 4
BOXES = 2  # detection: the boxes explained per image


def main() -> None:
    quiet()
    xml, inputs, precision = sys.argv[1], np.load(sys.argv[2]), sys.argv[3]
    detector_xml, detector_inputs = sys.argv[4], np.load(sys.argv[5])
    detector = IRModel(detector_xml, precision=precision)
    box_aise = black_box_method("detection", "AISE", BlackBoxConfig(preset="speed"))
    foreign = ForeignIROptions(labels=[f"class_{i}" for i in range(1000)], input_size=list(inputs.shape[-2:]),
                               mean=[0.0, 0.0, 0.0], std=[1.0, 1.0, 1.0])  # the inputs come preprocessed
    white = IRModel(xml, precision=precision, skip_outputs={"feature_map"}, foreign=foreign)
    plain = IRModel(xml, precision=precision, skip_outputs=XAI_OUTPUTS, foreign=foreign)
    white.require_xai_outputs()
    top = [int(np.argmax(plain.infer(image[None])["logits"])) for image in inputs]
    settings = {"RISE": BlackBoxConfig(num_masks=1000, num_cells=4, prob=0.5, seed=0),
                "AISE": BlackBoxConfig(iterations=20, kernel_widths=[0.1, 0.175, 0.25])}
    methods = {name: black_box_method("classification", name, config) for name, config in settings.items()}

    def white_box(request: dict) -> dict:
        """One image per call (``infer``), or streamed batches of ``BATCH`` (``infer_batches``)."""
        count = request.get("images", len(inputs))
        start = time.perf_counter()
        if request.get("batch", 1) == 1:
            for index in range(count):
                outputs = white.infer(inputs[index % len(inputs)][None])
        else:
            batch = np.ascontiguousarray(np.resize(inputs, (BATCH, *inputs.shape[1:])))
            outputs = list(white.infer_batches([batch] * STREAMED_BATCHES))[-1]
            count = BATCH * STREAMED_BATCHES
        ms = 1000 * (time.perf_counter() - start) / count
        first = outputs["saliency_map"][-1, top[(count - 1) % len(inputs)]]
        return {"ms": ms, "inferences": 1.0, "map": first.astype(float).ravel().tolist(),
                "hints": white.runtime_info["compiled_hints"]}

    def black_box(name: str):
        def run(request: dict) -> dict:
            index = request["image"]
            counter = CountingRunner(ir_runner(plain, settings[name].batch_size))
            start = time.perf_counter()
            methods[name].explain(inputs[index][None], counter, plain.model_info, PREDICTIONS)
            return {"ms": 1000 * (time.perf_counter() - start), "inferences": float(counter.images)}
        return run

    def detection(request: dict) -> dict:
        """AISE maps of the two highest-scoring boxes of one image (rows 0 and 1: sorted by score)."""
        image = detector_inputs[request["image"]]
        counter = CountingRunner(ir_runner(detector, 32))
        start = time.perf_counter()
        outputs = counter(image[None])
        boxes, labels = outputs["bboxes"][0, :BOXES], outputs["labels"][0, :BOXES]
        box_aise.box_maps(image, boxes[:, :4], labels, counter)
        return {"ms": 1000 * (time.perf_counter() - start), "inferences": float(counter.images)}

    def limit(request: dict) -> dict:
        model, images = (detector_xml, detector_inputs) if request.get("detector") else (xml, inputs)
        found = best_limit(model, images, precision, seconds=request.get("seconds", 0.5))
        return {"ms": found.ms_per_inference, "batch": found.batch, "hint": found.hint}

    serve({"white_box": white_box, "RISE": black_box("RISE"), "AISE": black_box("AISE"), "limit": limit,
           "AISE_detection": detection,
           "top": lambda request: {"top": top, "version": __import__("openvino").__version__}})


if __name__ == "__main__":
    main()
