"""Speech bubbles that point at the speaker: targets, placement, tails, the Speaker column."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from llm import Panel
from pipelines.face_pass import FaceEdit
from pipelines.layout import (
    Box,
    PageStyle,
    place_bubbles,
    plan_pages,
    quoted_lines,
    render_pages,
    scale_faces,
    tail_tip,
)
from pipelines.panel_table import HEADERS, panels_from_rows, rows_from_panels
from pipelines.project import PanelSpec
from pipelines.speech import line_speakers, speaker_targets

ADA, ALAN = "Ada Lovelace", "Alan Turing"
TALK = PanelSpec('Ada Lovelace asked Alan Turing, "Tea?" and Alan Turing replied, "Yes, please."',
                 (ADA, ALAN), speakers=(ADA, ALAN))
SIZE = (256, 256)
PANEL_COLOUR = (30, 120, 200)


def _edit(name: str, box) -> FaceEdit:
    return FaceEdit(character=0, name=name, box=box, crop=(0, 0, 1, 1), matched_by="identity", seed=0)


# ----------------------------------------------------------------------------- targets

def test_targets_are_faces_of_the_speakers_else_their_places():
    # no faces: the automatic layout puts Ada (named first) left, Alan right
    left, right = speaker_targets(TALK, SIZE)
    assert left.x0 == 0 and left.center[0] < 128 < right.center[0] and right.x1 == 256
    # the face pass's matched faces win, whoever stands where
    edits = [_edit(ADA, (170.2, 40, 230, 110)), _edit(ALAN, (20, 50, 80, 120))]
    assert speaker_targets(TALK, SIZE, edits) == [Box(170, 40, 230, 110), Box(20, 50, 80, 120)]
    # detected faces without names: the one inside the speaker's place
    faces = [Box(20, 60, 70, 110), Box(180, 60, 230, 110)]
    assert speaker_targets(TALK, SIZE, faces=faces) == faces
    # unknown and undrawn speakers get no target; a lone character speaks unattributed lines
    assert speaker_targets(PanelSpec('"Hi." "Bye."', (ADA, ALAN), speakers=("", "Grace Hopper")),
                           SIZE) == [None, None]
    alone = PanelSpec('"Hi!"', (ADA,))
    assert line_speakers(alone) == [ADA] and speaker_targets(alone, SIZE) == [Box(0, 0, 256, 256)]
    assert speaker_targets(PanelSpec("No words.", (ADA,)), SIZE) == []


# ----------------------------------------------------------------------------- geometry

@pytest.mark.parametrize("target", [Box(10, 150, 60, 200), Box(200, 10, 250, 60),
                                    Box(100, 100, 160, 160), Box(0, 0, 256, 256)])
def test_the_tail_ends_inside_the_speakers_box(target):
    image = Box(0, 0, 256, 256)
    bubble = place_bubbles(image, [(90, 40)], [target])[0]
    x, y = tail_tip(bubble, target)
    assert target.x0 <= x < target.x1 and target.y0 <= y < target.y1
    assert image.contains(bubble)


def test_bubbles_follow_speaking_order_and_keep_off_the_speakers_face():
    image = Box(0, 0, 400, 300)
    right_face, left_face = Box(260, 20, 340, 100), Box(40, 120, 120, 200)
    first, second = place_bubbles(image, [(100, 40), (100, 40)], [right_face, left_face])
    assert first.intersection(right_face) == 0          # moved beside the face, not on it
    assert second.x0 < first.x0 and second.y0 > first.y0  # the later line reads later
    stacked = place_bubbles(image, [(200, 40), (200, 40)], [None, None])
    assert stacked[1].y0 >= stacked[0].y1               # no overlap


# ----------------------------------------------------------------------------- pixels

def test_rendered_tails_reach_each_speaker():
    image = Image.new("RGB", SIZE, PANEL_COLOUR)
    faces = [Box(20, 150, 80, 210), Box(176, 150, 236, 210)]
    targets = [speaker_targets(TALK, SIZE, faces=faces)]
    style = PageStyle()
    page = np.asarray(render_pages([image], [TALK.text], targets=targets, faces=[faces])[0])
    slot = plan_pages([TALK.text], SIZE, "", style)[0].slots[0]
    assert slot.lines == ("Tea?", "Yes, please.")
    for box in scale_faces(targets[0], SIZE, slot.image):
        inside = page[box.y0:box.y1, box.x0:box.x1].reshape(-1, 3)
        drawn = np.any(np.abs(inside.astype(int) - PANEL_COLOUR).sum(axis=1) > 60)
        assert drawn, f"no tail inside {box}"
    plain = np.asarray(render_pages([image], [TALK.text], faces=[faces])[0])
    assert not np.array_equal(plain, page)  # without speakers: one shared bubble, as before


def test_quoted_lines():
    assert quoted_lines('"Hi," Ada said, “how are you?” "  "') == ["Hi,", "how are you?"]


# ----------------------------------------------------------------------------- the table

def test_speaker_column_round_trips_and_old_tables_still_read():
    assert HEADERS[-1] == "Speaker"
    rows = rows_from_panels([Panel(TALK.text, [ADA, ALAN], [ADA, ALAN]),
                             Panel("A quiet street.", [])])
    assert rows[0][4] == "Ada Lovelace; Alan Turing" and rows[1][4] == ""
    panels = panels_from_rows(rows)
    assert panels[0].speakers == (ADA, ALAN) and panels[1].speakers == ()
    assert panels_from_rows([['"Hi." "Bye."', "Ada Lovelace", "", "", "; Ada Lovelace"]])[0] \
        .speakers == ("", ADA)
    old = panels_from_rows([["Ada Lovelace reads.", "Ada Lovelace", "3", "left"]])[0]
    assert old == PanelSpec("Ada Lovelace reads.", (ADA,), seed=3, places=("left",))
    assert PanelSpec.from_dict(panels[0].to_dict()) == panels[0]
    assert "speakers" not in panels[1].to_dict()
