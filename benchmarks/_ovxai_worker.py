"""openvino_xai 1.1.0's side of ``bench_vs_openvino_xai.py``; runs in the ``bench-ovxai`` tox env (its own
OpenVINO 2024.4, numpy 1.x): ``python _ovxai_worker.py IR.xml INPUTS.npy PRECISION DETECTOR.xml
DETECTOR_INPUTS.npy``.

Each method is openvino_xai's public ``Explainer`` on the plain IR (white-box: Recipro-CAM inserted by
openvino_xai; black-box: RISE, AISE with a softmax postprocess, as otx_xai scores classes), called one
image at a time as its API takes them (its scaling step fixes the batch at one). openvino_xai compiles with
the plugin's defaults (LATENCY; bf16 on a CPU with bf16 instructions): the compiled model is replaced by
the same model compiled with the requested precision and otherwise the same defaults, so both tools infer
at one precision. Inferences are counted at the compiled model. The detector (an IR with ``bboxes`` (B, N, 5)
and ``labels`` outputs) runs through ``AISEDetection`` with a postprocess giving boxes, scores and labels:
openvino_xai supports any such detector black-box.
"""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
import openvino as ov
import openvino_xai as xai
from openvino_xai.explainer.explainer import ExplainMode

from _limit import best_limit
from _worker_loop import serve


class CountingModel:
    """A compiled model that counts the images it ran."""

    def __init__(self, compiled: ov.CompiledModel) -> None:
        self.compiled, self.images = compiled, 0

    def __call__(self, inputs: np.ndarray):
        self.images += len(inputs)
        return self.compiled(inputs)


def softmax(outputs) -> np.ndarray:
    logits = np.asarray(outputs[0], dtype=np.float64)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def detections(outputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    boxes = np.asarray(outputs["bboxes"])
    return boxes[..., :4], boxes[..., 4], np.asarray(outputs["labels"])


def explainer(xml: str, mode: ExplainMode, method: xai.Method, precision: str,
              task: xai.Task = xai.Task.CLASSIFICATION) -> tuple[xai.Explainer, CountingModel]:
    postprocess = (detections if task == xai.Task.DETECTION else softmax) if mode == ExplainMode.BLACKBOX else None
    made = xai.Explainer(model=xml, task=task, explain_mode=mode, explain_method=method, postprocess_fn=postprocess)
    compiled = ov.Core().compile_model(made.method._model, "CPU", {"INFERENCE_PRECISION_HINT": precision})
    counting = CountingModel(compiled)
    made.method._model_compiled = counting
    return made, counting


def main() -> None:
    logging.getLogger("openvino_xai").setLevel(logging.WARNING)
    xml, inputs, precision = sys.argv[1], np.load(sys.argv[2]), sys.argv[3]
    detector_xml, detector_inputs = sys.argv[4], np.load(sys.argv[5])
    box_aise, box_count = explainer(detector_xml, ExplainMode.BLACKBOX, xai.Method.AISE, precision,
                                    xai.Task.DETECTION)
    white, _ = explainer(xml, ExplainMode.WHITEBOX, xai.Method.RECIPROCAM, precision)
    rise, rise_count = explainer(xml, ExplainMode.BLACKBOX, xai.Method.RISE, precision)
    aise, aise_count = explainer(xml, ExplainMode.BLACKBOX, xai.Method.AISE, precision)
    plain = ov.Core().compile_model(xml, "CPU", {"INFERENCE_PRECISION_HINT": precision})
    top = [int(np.argmax(plain(image[None])[0])) for image in inputs]

    def white_box(request: dict) -> dict:
        """Every image, one per call (openvino_xai's Recipro-CAM with its scaling takes one image)."""
        count = request.get("images", len(inputs))
        start = time.perf_counter()
        for index in range(count):
            result = white(inputs[index % len(inputs)][None], targets=-1, resize=False, colormap=False)
        ms = 1000 * (time.perf_counter() - start) / count
        first = result.saliency_map[top[(count - 1) % len(inputs)]]
        return {"ms": ms, "inferences": 1.0, "map": np.asarray(first, dtype=float).ravel().tolist()}

    def black_box(method: xai.Explainer, counter: CountingModel, settings: dict):
        def run(request: dict) -> dict:
            index = request["image"]
            counter.images = 0
            start = time.perf_counter()
            method(inputs[index][None], targets=[top[index]], resize=False, colormap=False, **settings)
            return {"ms": 1000 * (time.perf_counter() - start), "inferences": float(counter.images)}
        return run

    def detection(request: dict) -> dict:
        """AISEDetection of the two highest-scoring boxes (rows 0 and 1), speed preset."""
        box_count.images = 0
        start = time.perf_counter()
        box_aise(detector_inputs[request["image"]][None], targets=[0, 1], resize=False, colormap=False,
                 num_iterations_per_kernel=20, divisors=[7.0, 4.0, 1.0])
        return {"ms": 1000 * (time.perf_counter() - start), "inferences": float(box_count.images)}

    def limit(request: dict) -> dict:
        model, images = (detector_xml, detector_inputs) if request.get("detector") else (xml, inputs)
        found = best_limit(model, images, precision, seconds=request.get("seconds", 0.5))
        return {"ms": found.ms_per_inference, "batch": found.batch, "hint": found.hint}

    serve({"white_box": white_box, "top": lambda request: {"top": top, "version": ov.__version__},
           "RISE": black_box(rise, rise_count, {"num_masks": 1000, "num_cells": 4, "prob": 0.5, "seed": 0}),
           "AISE": black_box(aise, aise_count, {"num_iterations_per_kernel": 20,
                                                "kernel_widths": [0.1, 0.175, 0.25]}),
           "AISE_detection": detection, "limit": limit})


if __name__ == "__main__":
    main()
