"""Step 3 · Style and settings: keywords, template, negative prompt, seed, sampler, size, title."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:  # pragma: no cover
    from session import Studio


@dataclass
class StyleStep:
    """The components of the Style and settings step (no events of its own)."""

    style_template: Any
    style_keywords: Any
    negative_prompt: Any
    seed: Any
    seed_randomize: Any
    steps: Any
    guidance: Any
    width: Any
    height: Any
    candidates: Any
    comic_title: Any
    face_pass: Any
    loras: Any

    def inputs(self) -> list:
        """In the order of :meth:`session.request.RequestSteps.settings_from`'s arguments."""
        return [self.style_template, self.style_keywords, self.negative_prompt, self.seed,
                self.seed_randomize, self.steps, self.guidance, self.width, self.height,
                self.candidates, self.comic_title, self.face_pass, self.loras]


def build(studio: "Studio") -> StyleStep:
    """Lay out the Style and settings tab (call inside ``gr.Blocks``)."""
    defaults = studio.default_settings()
    step = studio.size_step()
    with gr.Tab("3 · Style and settings", id="style", elem_id="tab_style"):
        with gr.Row(equal_height=True):
            style_template = gr.Dropdown(studio.style_choices(), value=defaults.style,
                                         label="Style", elem_id="style_template")
            comic_title = gr.Textbox(label="Title (first page)", elem_id="comic_title")
        # no gr.Group around it: a group draws an empty grey bar above the label
        style_keywords = gr.CheckboxGroup(list(studio.styles.keywords),
                                          label="Style keywords (added to every panel)",
                                          elem_id="style_keywords")
        negative_prompt = gr.Textbox(label="Negative prompt", value=defaults.negative_prompt,
                                     lines=2, elem_id="negative_prompt")
        with gr.Row():
            # no minimum/maximum on number fields: Gradio would refuse a value out of range with
            # a bare "Error" before the app could say why; Studio.settings_from checks them
            seed = gr.Number(label="Seed", value=defaults.seed, precision=0, elem_id="seed")
            seed_randomize = gr.Checkbox(label="Randomise the seed", value=False,
                                         elem_id="seed_randomize")
            candidates = gr.Slider(1, 8, value=defaults.candidates, step=1,
                                   label="Candidates per panel (best of N by face similarity)",
                                   elem_id="candidates")
        with gr.Row():
            steps = gr.Slider(1, 150, value=defaults.steps, step=1, label="Steps",
                              elem_id="steps")
            guidance = gr.Slider(0, 20, value=defaults.guidance, step=0.5,
                                 label="Guidance", elem_id="guidance")
            width = gr.Number(label="Width", value=defaults.width, precision=0,
                              step=step, elem_id="width")
            height = gr.Number(label="Height", value=defaults.height, precision=0,
                               step=step, elem_id="height")
        face_pass = gr.Checkbox(label="Face pass: redraw each character's face with its identity "
                                      "(places and faces: see the Place column on the Story step)",
                                value=defaults.face_pass, elem_id="face_pass")
        # style LoRAs of loras_dir (--loras DIR), one row each; weight 0 = off (docs/APP.md)
        rows = studio.lora_rows()
        label = ("Style LoRAs: type a weight to use one (0 = off)" if rows else
                 f"Style LoRAs: none on this server (put SDXL LoRA .safetensors files in "
                 f"{studio.config.loras_dir}/ and restart)")
        loras = gr.Dataframe(rows, headers=["LoRA", "weight"],
                             datatype=["str", "number"], type="array", column_count=2,
                             interactive=True, label=label, static_columns=[0],
                             elem_id="style_loras")
    return StyleStep(style_template, style_keywords, negative_prompt, seed, seed_randomize, steps,
                     guidance, width, height, candidates, comic_title, face_pass, loras)
