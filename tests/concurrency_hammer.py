"""Hammer every shared face object from 8 threads; run as a subprocess by test_concurrency.py.

``python tests/concurrency_hammer.py [ROUNDS]`` builds ONE of each shared object (as the app
does), computes every call's result once serially, then has 8 threads make the same calls at once,
ROUNDS times each, and compares each result with the serial one. It prints ``start NAME`` before
and ``ok NAME <seconds>`` after each object, and exits 1 with a line per mismatch or exception.
A native crash (dlib's ``free(): corrupted unsorted chunks``) kills this process, not pytest:
the test sees the signal and the last ``start`` line names the object.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from tiny_onnx import write_tiny_arcface  # noqa: E402  (this script's folder is on sys.path)

torch.set_num_threads(1)

THREADS = 8


def same(a: Any, b: Any) -> bool:
    """Deep equality for the results compared here (arrays exactly, dataclasses field by field)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b))
    if isinstance(a, torch.Tensor):
        return torch.equal(a, b)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if hasattr(a, "__dataclass_fields__"):
        return type(a) is type(b) and all(same(getattr(a, f), getattr(b, f))
                                          for f in a.__dataclass_fields__)
    return a == b


def hammer(name: str, calls: list[Callable[[], Any]], rounds: int, failures: list[str]) -> None:
    """Serial reference of each call, then THREADS threads released together, each making
    ``rounds`` calls (thread t's r-th call is ``calls[(t + r) % len(calls)]``), compared."""
    print(f"start {name}", flush=True)
    start = time.perf_counter()
    expected = [call() for call in calls]
    barrier = threading.Barrier(THREADS)

    def worker(offset: int) -> None:
        barrier.wait()
        try:
            for r in range(rounds):
                i = (offset + r) % len(calls)
                if not same(calls[i](), expected[i]):
                    failures.append(f"{name}: call {i} differs from its serial result")
        except Exception as exc:  # noqa: BLE001 - reported, the run fails
            failures.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"ok {name} {time.perf_counter() - start:.1f}s", flush=True)


def parse(parser: torch.nn.Module, image: torch.Tensor) -> torch.Tensor:
    """BiSeNet's class map of a (1, 3, H, W) float image (a small one: the parser's cost grows
    with pixels; its thread safety does not)."""
    with torch.no_grad():
        return parser(image)[0].argmax(dim=1)


def photos() -> dict[str, np.ndarray]:
    from matplotlib import cbook
    from PIL import Image
    from skimage import data

    with cbook.get_sample_data("grace_hopper.jpg") as handle:
        hopper = np.asarray(Image.open(handle).convert("RGB"))
    return {"astronaut": data.astronaut(), "hopper": hopper}


def main(rounds: int) -> int:
    from facexlib.parsing.bisenet import BiSeNet
    from transformers import ViTConfig, ViTModel

    from faces.face_detection import DlibFaceDetector
    from faces.face_prep import prepare_face
    from stableidentity.identity_encoder import identity_features
    from faces.recognizers import DlibRecognizer, InsightFaceRecognizer
    from faces.similarity import FaceSimilarity

    images = photos()
    astronaut, hopper = images["astronaut"], images["hopper"]
    # the tiny preset's face parser and FR-ViT classes (random weights), without loading SDXL
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        parser = BiSeNet(num_class=19).eval()
        fr_vit = ViTModel(ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                    intermediate_size=64, image_size=224, patch_size=16),
                          add_pooling_layer=False).eval()
    # one detector, shared as components.face_detector is (no upsampling: 4x cheaper, same code)
    detector = DlibFaceDetector(upsample=0)
    dlib_recognizer = DlibRecognizer()
    with TemporaryDirectory() as tmp:
        onnx_recognizer = InsightFaceRecognizer.from_onnx(write_tiny_arcface(Path(tmp) / "tiny_arcface.onnx"))
    faces = {key: detector.detect(image) for key, image in images.items()}
    small = torch.from_numpy(astronaut[::4, ::4].copy()).permute(2, 0, 1)[None].float() / 255.0
    aligned = [prepare_face(astronaut, detector), prepare_face(hopper, detector)]
    similarity = FaceSimilarity(detector=detector, recognizer=dlib_recognizer)
    references = {"Eileen Collins": similarity.reference(aligned[0].image),
                  "Grace Hopper": similarity.reference(aligned[1].image)}

    def prep(image: np.ndarray) -> Callable[[], Any]:
        return lambda: (lambda a: (a.image, a.landmarks, a.source_box))(prepare_face(image, detector))

    failures: list[str] = []
    plan: list[tuple[str, int, list[Callable[[], Any]]]] = [
        ("prepare_face on a shared dlib detector (HOG + 68 landmarks)", 3,
         [prep(astronaut), prep(hopper)]),
        ("dlib recogniser (5 landmarks + ResNet)", 1,
         [lambda: dlib_recognizer.embed(astronaut, faces["astronaut"][0]),
          lambda: dlib_recognizer.embed(hopper, faces["hopper"][0])]),
        ("InsightFace ONNX recogniser", 2,
         [lambda: onnx_recognizer.embed(astronaut, faces["astronaut"][0]),
          lambda: onnx_recognizer.embed(hopper, faces["hopper"][0])]),
        ("facexlib BiSeNet face parser", 2, [lambda: parse(parser, small)]),
        ("FR-ViT", 2, [lambda: identity_features(fr_vit,
                                                 np.stack([a.image for a in aligned]))]),
        ("face similarity (detector + recogniser)", 1,
         [lambda: similarity.score_panel(astronaut, references),
          lambda: similarity.reference(aligned[1].image)]),
    ]
    plan.append(("all of them at once", 1, [calls[0] for _, _, calls in plan]))
    for name, rounds_each, calls in plan:
        hammer(name, calls, rounds_each * rounds, failures)
    for line in failures:
        print(f"FAIL {line}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
