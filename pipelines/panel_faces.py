"""The identity face pass of a drawn panel, as steps of :class:`~pipelines.generation.PanelGenerator`.

:class:`FacePassSteps` detects a panel's faces, matches them to its named characters
(:mod:`pipelines.face_pass`) and redraws the matched ones in one batched SDXL inpainting call,
each crop conditioned on its own character alone. It is a mixin: it uses the generator's
``config``, ``styles``, ``face_detector``, ``_inpaint_pipe`` and ``prompt_embeddings``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import torch
from PIL import Image

from pipelines.binding import PromptEmbeddings, bind_text
from pipelines.descriptions import describe
from pipelines.face_pass import (
    FaceEdit,
    FaceJob,
    IdentityMatcher,
    face_prompt,
    match_faces,
    redraw_faces,
    usable_faces,
)
from pipelines.project import ComicRequest
from pipelines.regions import panel_regions

if TYPE_CHECKING:
    from pipelines.generation import PreparedPanel


class FacePassSteps:
    """Face detection, matching and batched inpainting for a panel (mixed into PanelGenerator)."""

    def find_faces(self, request: ComicRequest, panel: PreparedPanel, image: Image.Image,
                   matcher: IdentityMatcher | None = None) -> list[FaceJob]:
        """Detect the faces of a drawn panel and match them to its characters (by identity with
        ``matcher``, else by place); [] without a detector or a face. Detections under
        ``generation.face_pass_min_score`` / ``face_pass_min_size`` are never matched, and by
        identity a pair under ``face_pass_min_similarity`` is dropped (left as drawn)."""
        import numpy as np

        gen = self.config.generation
        rgb = np.asarray(image.convert("RGB"))
        names = list(panel.characters)
        regions = list(panel.regions) or panel_regions((), len(names))
        if matcher is not None:  # detector and recogniser lock themselves
            faces, embeddings = matcher.similarity.embed_faces(rgb)
        elif self.face_detector is not None:
            faces, embeddings = self.face_detector.detect(rgb), None
        else:
            return []
        keep = usable_faces(faces, gen.face_pass_min_score, gen.face_pass_min_size)
        return match_faces([faces[i].box for i in keep], names, regions, image.size,
                           embeddings[keep] if embeddings is not None else None,
                           matcher.references if matcher is not None else None,
                           min_similarity=gen.face_pass_min_similarity)

    def face_pass(self, request: ComicRequest, panel: PreparedPanel, image: Image.Image, seed: int,
                  matcher: IdentityMatcher | None = None, jobs: list[FaceJob] | None = None
                  ) -> tuple[Image.Image, list[FaceEdit]]:
        """Redraw the panel's matched faces (:mod:`pipelines.face_pass`), all in one batched
        inpainting call; ``jobs`` given skips detection. Returns the image (the same object when
        nothing was redrawn) and the edits."""
        gen = self.config.generation
        if gen.face_pass_strength <= 0:
            return image, []
        if jobs is None:
            jobs = self.find_faces(request, panel, image, matcher)
        if not jobs:
            return image, []
        factor = self.pipe.vae_scale_factor
        size = max(factor, gen.face_pass_size - gen.face_pass_size % factor)  # a multiple of it

        def inpaint(crops: list[Image.Image], masks: list[Image.Image], batch: list[FaceJob],
                    seeds: list[int]) -> list[Image.Image]:
            return self.inpaint_faces(request, panel, crops, masks, batch, seeds)

        return redraw_faces(image, jobs, inpaint, margin=gen.face_pass_margin, size=size, seed=seed)

    def face_prompt_embeddings(self, request: ComicRequest, panel: PreparedPanel, job: FaceJob,
                               guidance: bool) -> PromptEmbeddings:
        """One face's conditioning: :func:`pipelines.face_pass.face_prompt` (with the panel's
        sentence minus the other characters when ``generation.face_pass_context``), bound to
        ``job``'s character alone, in the panel's style; (1, 77, d) like a panel's."""
        keywords = self.styles.keyword_list(request.keywords)
        name = panel.characters[job.character]
        sentence = request.panels[panel.index].text if self.config.generation.face_pass_context else ""
        text = describe(face_prompt(name, sentence, [n for n in panel.characters if n != name]), [name],
                        request.description_map)
        prompt, _ = self.styles.compose(text, request.style, keywords)
        bound, _ = self.styles.compose(bind_text(text, [name]), request.style, keywords)
        face = replace(panel, cast=(panel.cast[job.character],), prompt=prompt, bound_prompt=bound,
                       characters=(name,), unnamed=(), regions=(), tokens=(), background_prompt="",
                       character_prompts=())
        return self.prompt_embeddings(face, guidance, request.loras)

    def inpaint_faces(self, request: ComicRequest, panel: PreparedPanel, crops: list[Image.Image],
                      masks: list[Image.Image], jobs: list[FaceJob], seeds: list[int]) -> list[Image.Image]:
        """Face crops redrawn by SDXL inpainting in ONE batched call: crop ``k`` with ``jobs[k]``'s
        character's prompt (:meth:`face_prompt_embeddings`) and its own generator
        (``seeds[k]``), so each output equals that face redrawn alone (within float tolerance of
        batched kernels). Steps: the request's, at least enough for one denoising step.

        Args:
            crops: RGB, all the same size (``face_pass_size``); masks: L, white = may change.
        Returns:
            one RGB image per crop, in order.
        """
        import math

        pipe = self._inpaint_pipe()
        guidance = float(request.guidance_scale)
        cfg = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
        each = [self.face_prompt_embeddings(request, panel, job, cfg) for job in jobs]
        kwargs = [e.as_kwargs() for e in each]
        stacked = {key: None if value is None else torch.cat([k[key] for k in kwargs])
                   for key, value in kwargs[0].items()}
        strength = self.config.generation.face_pass_strength
        steps = max(int(request.steps), math.ceil(1 / strength))
        output = pipe(**stacked, image=crops, mask_image=masks,
                      strength=strength, num_inference_steps=steps, guidance_scale=guidance,
                      width=crops[0].width, height=crops[0].height,
                      generator=[torch.Generator().manual_seed(seed) for seed in seeds], output_type="pil")
        return list(output.images)
