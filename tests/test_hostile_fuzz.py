"""Fuzz: a few hundred seeded, generated hostile project.json / panels.json files through the loaders.

Every fourth project goes inside a comic.zip. Every file must end in a valid project (whose saved form is valid, finite JSON within the limits)
or in the loader's one-line refusal, never another exception or a traceback.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

from configs import load_limits
from pipelines.project import GenerationError, ProjectError, load_panels, load_project
from pipelines.request_limits import check_request
from core.safe_read import loads_json

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hostile import hostile_documents  # noqa: E402

SEED = 15
COUNT = 300


def _one_safe_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message
    assert all(ch.isprintable() for ch in message), ascii(message)


def test_generated_hostile_documents_end_in_a_project_or_one_line(tmp_path):
    limits = load_limits()
    outcomes = {"project": 0, "panels": 0, "refused": 0}
    for index, (kind, text) in enumerate(hostile_documents(SEED, COUNT)):
        path = tmp_path / f"{index:03d}.json"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            if kind == "project":
                if index % 4 == 1:  # the same document inside a comic.zip
                    path = path.with_suffix(".zip")
                    with zipfile.ZipFile(path, "w") as archive:
                        archive.writestr("project.json", text.encode("utf-8", "surrogatepass"))
                project = load_project(path)
                saved = loads_json(project.to_json(), "saved", limits)  # finite, shallow, bounded
                assert saved["panels"] and check_request(project.request, limits, project.preset)
            else:
                panels = load_panels(path)
                assert 1 <= len(panels) <= limits.panels
                json.dumps([p.to_dict() for p in panels], allow_nan=False)
            outcomes[kind] += 1
        except (ProjectError, GenerationError) as exc:  # LimitError, PanelTableError: subclasses
            _one_safe_line(str(exc))
            outcomes["refused"] += 1
    assert sum(outcomes.values()) == COUNT
    assert outcomes["refused"] > COUNT // 2 and outcomes["project"] > 20 and outcomes["panels"] > 10, outcomes
