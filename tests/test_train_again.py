"""A training interrupted by a restart keeps its photo, name, pronouns and steps, so *Train
again* is one call; the photo goes once it is queued again (in-process, tiny preset)."""

from __future__ import annotations

import pytest
from PIL import Image

from identities.owners import LOCAL
from serving.store import INTERRUPTED_MESSAGE, JobRecord
from serving.training_service import TrainingInputError


def test_an_interrupted_job_trains_again_in_one_call(studio, astronaut, tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    service, store = studio.training, studio.store
    request = service.check(str(path), "Eileen Collins", "she", True, 2)
    # what a kill -9 during training leaves: a running row with its photo, then a restart
    store.add_job(JobRecord(id="cut0short000", owner=LOCAL.id, label="Training Eileen Collins",
                            name=request.name, pronouns=request.pronouns, steps=2, seed=None,
                            status="running", total=2, photo=request.photo))
    assert service.settle() == []
    assert store.job("cut0short000").status == "interrupted"
    assert service.retrainable(LOCAL) == ["cut0short000"]
    # someone else's job id, or a made-up one, is refused in one line
    with pytest.raises(TrainingInputError, match="no training job of yours with id 'nope'"):
        service.retrain("nope", LOCAL)
    from identities.owners import Owner

    with pytest.raises(TrainingInputError, match="no training job of yours"):
        service.retrain("cut0short000", Owner("key:" + "1" * 32))

    view, name = service.retrain("cut0short000", LOCAL)
    assert name == "Eileen Collins" and view.id != "cut0short000"
    old = store.job("cut0short000")
    assert old.photo is None and old.message.startswith(INTERRUPTED_MESSAGE.split(";")[0])
    assert "trained again" in old.message and service.retrainable(LOCAL) == []
    with pytest.raises(TrainingInputError, match="already started again"):
        service.retrain("cut0short000", LOCAL)  # once only: the photo is gone
    done = studio.queue.wait(view.id, timeout_s=120)
    assert done.status == "done", done.message
    assert "Eileen Collins" in studio.catalog
    entry = studio.catalog.get("Eileen Collins")
    assert entry.pronouns == "she"
