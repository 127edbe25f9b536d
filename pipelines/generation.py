"""Phase 4: draw comic panels with diffusers' StableDiffusionXLPipeline and bound identities.

:class:`PanelGenerator` composes (never copies) ``StableDiffusionXLPipeline``: it is built once per
:class:`~models.loading.Components` (see :func:`panel_generator`), with the preset's memory
switches applied, and draws each panel in two steps:

1. with the cast's signal rows active for this thread: encode prompt + negative with diffusers'
   own ``encode_prompt`` (:meth:`SignalWordBinder.encode`);
2. ``pipe(prompt_embeds=..., pooled_prompt_embeds=..., ...)`` on this thread's shallow copy of
   the pipeline with its own scheduler (schedulers are stateful; two concurrent calls must not
   share one).

Both steps of one panel (all its candidates) run under the Components' device gate, so panels of
concurrent requests and training steps take turns on the device, a panel at a time
(:mod:`core.concurrency`).

Seeds (documented in docs/PANELS.md): panel ``i`` uses ``seed + i`` unless the panel carries its
own seed; candidate ``c`` of a panel uses ``panel_seed + c * CANDIDATE_SEED_STRIDE``. Every
candidate has its own CPU ``torch.Generator``, so candidate 0 of a panel equals the vanilla
pipeline called with ``generator=torch.Generator().manual_seed(panel_seed)``, on any device.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
import weakref
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from diffusers import StableDiffusionXLPipeline
from PIL import Image

from configs import load_limits
from models.compilation import resolve_compile
from models.loading import apply_runtime_switches
from pipelines.binding import (
    SIGNAL_WORD,
    BindingError,
    IdentityLike,
    PromptCache,
    PromptEmbeddings,
    SignalWordBinder,
    bind_text,
    cast_key,
    signal_pair,
)
from pipelines.character_prompts import character_prompts, encode_character_prompts
from pipelines.descriptions import describe
from pipelines.face_pass import FaceEdit, IdentityMatcher
from pipelines.layout import Box, PageStyle, detect_faces, render_pages
from pipelines.loras import LoraChoice, check_loras, lora_key, loras_applied
from pipelines.panel_faces import FacePassSteps
from pipelines.project import (
    ComicRequest,
    GenerationError,
    IdentitySource,
    PanelSpec,
    Project,
    UnknownCharacter,
    lookup_identity,
    panels_from_json,
)
from pipelines.regional import (
    RegionalAttnProcessor,
    make_plan,
    regional_unet,
    unet_levels,
)
from pipelines.regions import Region, panel_regions, sentence_order
from pipelines.request_limits import check_request
from pipelines.speech import speaker_targets
from pipelines.styles import StyleBook, StyleError, load_style_book

logger = logging.getLogger(__name__)

CANDIDATE_SEED_STRIDE = 1_000_000
#: Candidates per panel allowed by ``configs/limits.yaml`` (``candidates``).
MAX_CANDIDATES = load_limits().candidates


def candidate_seed(panel_seed: int, candidate: int) -> int:
    """Seed of candidate ``candidate`` of a panel: ``panel_seed + candidate * 1_000_000``."""
    return panel_seed + candidate * CANDIDATE_SEED_STRIDE


@dataclass
class PanelResult:
    """One drawn candidate of one panel (yielded as soon as its panel is decoded).

    Attributes:
        index: panel index (0-based).
        candidate: candidate index within the panel (0-based); all candidates are yielded so
            that they can be scored.
        image: the RGB image, ``width`` x ``height`` pixels.
        prompt: the prompt with real names (style and keywords applied).
        bound_prompt: the same with signal words, as the text encoders saw it (with per-character
            prompts they saw :class:`PreparedPanel`'s ``background_prompt`` and
            ``character_prompts`` instead).
        negative_prompt: the negative prompt used.
        seed: this candidate's seed (:func:`candidate_seed`).
        characters: the panel's cast, in binding order.
        seconds: wall time of the panel's batch (encode + denoise + decode), shared by its candidates.
        regional: whether regional attention drew it (two or more characters, switch on).
        faces: the faces the face pass redrew, with whose they are (empty when it found none
            or was off).
    """

    index: int
    candidate: int
    image: Image.Image
    prompt: str
    bound_prompt: str
    negative_prompt: str
    seed: int
    characters: tuple[str, ...]
    seconds: float = 0.0
    regional: bool = False
    faces: tuple[FaceEdit, ...] = ()


@dataclass(frozen=True)
class PreparedPanel:
    """A validated panel, ready to draw: identities resolved, prompts composed and bound.

    ``cast`` and ``characters`` hold only the characters *named* in the text (after pronoun
    resolution, which the story parser does); ``unnamed`` lists the characters listed for the
    panel whose full name does not occur in it: they are left out of the binding, the regions
    and the face pass, so their identity cannot appear (worth a warning to the user).
    ``regions`` holds each character's place as a 0-1 box (own place, else the automatic layout
    by count and sentence order); ``tokens`` the positions of each character's signal words in
    the encoded prompt. With per-character prompts (regional, ``generation.character_prompts``,
    two or more characters) ``background_prompt`` and ``character_prompts`` (one per character,
    bound to ``v1* v2*``) are the styled prompts, one sequence each (:mod:`pipelines.character_prompts`).
    """

    index: int
    cast: tuple[IdentityLike, ...]
    prompt: str
    bound_prompt: str
    negative_prompt: str
    seed: int
    characters: tuple[str, ...] = ()
    unnamed: tuple[str, ...] = ()
    regions: tuple[Region, ...] = ()
    tokens: tuple[tuple[int, ...], ...] = ()
    background_prompt: str = ""
    character_prompts: tuple[str, ...] = ()


def named_characters(text: str, characters: Sequence[str]) -> tuple[list[int], str]:
    """Which listed characters ``text`` names, and ``text`` bound for those only.

    Returns the indices (into ``characters``) of those whose full name occurs in ``text``, and
    ``text`` with their names replaced by signal words numbered in that order (the first named
    listed character gets ``v1* v2*``). Listed-but-unnamed characters are left out so they get
    no signal words, no region and no face (BindingError as :func:`bind_text`).
    """
    bound = bind_text(text, list(characters))
    named = [k for k in range(len(characters)) if signal_pair(k)[0] in bound]
    if len(named) != len(characters):
        bound = bind_text(text, [characters[k] for k in named])
    return named, bound


# ----------------------------------------------------------------------------- pipeline


def apply_memory_switches(pipe: StableDiffusionXLPipeline, runtime, device: torch.device) -> None:
    """Apply ``runtime`` (a RuntimeConfig) to ``pipe``: VAE slicing/tiling, attention,
    channels-last, ``torch.compile`` of the UNet, model CPU offload.

    dtype is decided when the components are loaded, and so are attention, channels-last and
    compile (:func:`models.loading.apply_runtime_switches`, repeated here as a no-op for
    components loaded elsewhere): this runs once per generator, never per panel. Model CPU
    offload is enabled only when configured AND on CUDA (accelerate's hooks need an
    accelerator); elsewhere it is ignored. The switches set flags on the shared modules,
    consistent with their preset.
    """
    vae = pipe.vae
    (vae.enable_slicing if runtime.vae_slicing else vae.disable_slicing)()
    (vae.enable_tiling if runtime.vae_tiling else vae.disable_tiling)()
    apply_runtime_switches(pipe.unet, vae, runtime, device)
    if runtime.cpu_offload:
        if device.type == "cuda":
            pipe.enable_model_cpu_offload(device=device)
        else:
            logger.info("runtime.cpu_offload ignored: model CPU offload needs a CUDA device")


class PanelGenerator(FacePassSteps):
    """Draws panels for one Components; build with :func:`panel_generator` (cached).

    Attributes:
        pipe: the base ``StableDiffusionXLPipeline`` (shared modules, binder tokenizers).
        binder: the :class:`SignalWordBinder` (signal pool).
        gate: the Components' :class:`~core.concurrency.DeviceGate`, held per panel.
        styles: the :class:`StyleBook`.
        config: the preset (``AppConfig``).
        prompt_cache: the :class:`PromptCache` of encoded prompts
            (``generation.prompt_cache_size`` entries; 0 turns it off).
    """

    def __init__(self, components, styles: StyleBook | None = None) -> None:
        self.config = components.config
        self.device = components.device
        self.binder = SignalWordBinder(components)
        self.gate = components.gate
        self.styles = styles or load_style_book()
        parts = components.pipeline_parts()
        parts.update(tokenizer=self.binder.tokenizer, tokenizer_2=self.binder.tokenizer_2)
        self.pipe = StableDiffusionXLPipeline(**parts)
        self.pipe.set_progress_bar_config(disable=True)
        apply_memory_switches(self.pipe, self.config.runtime, self.device)
        #: whether runtime.compile compiles here (auto: on CUDA only; models.compilation)
        self.compiles = resolve_compile(self.config.runtime.compile, self.device)
        # where prompts are encoded: the offload hooks' device when offloading. Computed once;
        # the property walks every module (milliseconds on SDXL), vanilla pays it once per call.
        self.execution_device = self.pipe._execution_device
        base = self.pipe.scheduler  # pristine; each thread's pipeline copy gets its own deep copy
        self._scheduler = type(base).from_config(base.config)
        self._local = threading.local()
        self.prompt_cache = PromptCache(self.config.generation.prompt_cache_size)
        self.face_detector = getattr(components, "face_detector", None)
        self._inpaint_base = None
        self._inpaint_lock = threading.Lock()
        self._regional: tuple[torch.nn.Module, RegionalAttnProcessor] | None = None

    @property
    def max_identities(self) -> int:
        return self.binder.max_identities

    def _call_pipe(self) -> StableDiffusionXLPipeline:
        """This thread's shallow copy of :attr:`pipe`, with its own scheduler.

        Schedulers (and the pipeline's per-call attributes) are stateful, so two threads must
        not share them; one thread runs one call at a time, and every call starts with
        ``set_timesteps``, which resets the scheduler's state. Copies share all modules.
        """
        pipe = getattr(self._local, "pipe", None)
        if pipe is None:
            pipe = copy.copy(self.pipe)
            pipe.scheduler = copy.deepcopy(self._scheduler)
            self._local.pipe = pipe
        return pipe

    def _regional_pipe(self, fresh: bool = False) -> tuple[StableDiffusionXLPipeline, RegionalAttnProcessor]:
        """This thread's pipeline copy drawing through the generator's regional view of the UNet
        (:func:`pipelines.regional.regional_unet`), and the view's processor.

        The shared UNet is never changed. One view per generator (built on first use; a compiled
        UNet gives one compiled view, compiled once): its processor's plan is set and cleared
        inside :meth:`draw`, which holds the device gate, so panels never share it at once.
        ``fresh``: a new, uncached view of the UNet as it is now (style LoRAs loaded: the cached
        view's copied attention modules would not see their layers).
        """
        if fresh:
            processor = RegionalAttnProcessor()
            pipe = copy.copy(self._call_pipe())
            pipe.unet = regional_unet(self.pipe.unet, processor)
            return pipe, processor
        entry = getattr(self._local, "regional", None)
        if entry is None:
            with self._inpaint_lock:
                if self._regional is None:
                    processor = RegionalAttnProcessor()
                    self._regional = (regional_unet(self.pipe.unet, processor), processor)
            view, processor = self._regional
            pipe = copy.copy(self._call_pipe())
            pipe.unet = view
            entry = self._local.regional = (pipe, processor)
        return entry

    def _inpaint_pipe(self):
        """This thread's ``StableDiffusionXLInpaintPipeline`` built ``from_pipe`` on the same
        components (no new weights), with its own scheduler."""
        pipe = getattr(self._local, "inpaint", None)
        if pipe is None:
            from diffusers import StableDiffusionXLInpaintPipeline

            with self._inpaint_lock:
                if self._inpaint_base is None:
                    # from_pipe ends with pipeline.to(dtype), float32 unless told: pass the
                    # components' own dtype so the shared modules are never cast
                    self._inpaint_base = StableDiffusionXLInpaintPipeline.from_pipe(
                        self.pipe, dtype=self.pipe.unet.dtype)
                    self._inpaint_base.set_progress_bar_config(disable=True)
            pipe = copy.copy(self._inpaint_base)
            pipe.scheduler = copy.deepcopy(self._scheduler)
            self._local.inpaint = pipe
        return pipe

    # ------------------------------------------------------------------ validation

    def check_request(self, request: ComicRequest) -> ComicRequest:
        """Validate settings (not identities) and fill defaults; GenerationError / StyleError.

        The limits table (``configs/limits.yaml``) is checked for this generator's preset."""
        request = request.resolved(self.config)
        if not request.panels:
            raise GenerationError("the panel list is empty")
        self.styles.style(request.style)
        self.styles.keyword_list(request.keywords)
        reserved = SIGNAL_WORD.search(request.negative_prompt or "")
        if reserved:
            raise BindingError(f"the negative prompt contains the reserved word '{reserved.group(0)}'")
        check_request(request, load_limits(), self.config.name)  # steps, sizes, seeds, ...
        request = replace(request, loras=check_loras(request.loras, self.config.loras_dir))
        factor = self.pipe.vae_scale_factor
        for label, value in (("width", request.width), ("height", request.height)):
            if value % factor:
                raise GenerationError(f"{label} must be a positive multiple of {factor} pixels, got {value}")
        return request

    def prepare(self, request: ComicRequest,
                identities: IdentitySource | Mapping[str, IdentityLike] | None = None
                ) -> tuple[ComicRequest, list[PreparedPanel]]:
        """Validate everything before drawing anything: settings, styles, cast, binding.

        Returns the resolved request and one :class:`PreparedPanel` per panel.

        Raises:
            GenerationError (UnknownCharacter), StyleError, BindingError.
        """
        request = self.check_request(request)
        keywords = self.styles.keyword_list(request.keywords)
        descriptions = request.description_map
        found: dict[str, IdentityLike] = {}  # one library read per name, not per panel
        prepared = []
        for i, panel in enumerate(request.panels):
            where = f"panel {i + 1}"
            if len(panel.characters) > self.max_identities:
                raise GenerationError(
                    f"{where}: {len(panel.characters)} identities ({', '.join(panel.characters)}); "
                    f"this preset allows at most {self.max_identities} per panel")
            cast = []
            for name in panel.characters:
                if identities is None:
                    raise UnknownCharacter(f"{where}: character '{name}' needs an identity library")
                key = name.lower()
                try:
                    if key not in found:
                        found[key] = lookup_identity(identities, name)
                    identity = found[key]
                    self.binder.check_identity(identity)
                except (GenerationError, BindingError) as exc:
                    raise type(exc)(f"{where}: {exc}") from None
                cast.append(identity)
            try:
                named, bound = named_characters(panel.text, panel.characters)
            except BindingError as exc:
                raise BindingError(f"{where}: {exc}") from None
            characters = tuple(panel.characters[k] for k in named)
            cast = [cast[k] for k in named]
            places = [p for k, p in enumerate(panel.places) if k in named]
            separate = request.regional and self.config.generation.character_prompts and len(cast) > 1
            # each description follows its character's first mention (the prompt shown and, with
            # one shared prompt, encoded); with separate prompts it is encoded in that character's
            # own prompt only (the background is cut from the sentence without descriptions)
            text = describe(panel.text, characters, descriptions)
            if text != panel.text:
                try:
                    bound = bind_text(text, list(characters))
                except BindingError as exc:
                    raise BindingError(f"{where}: {exc}") from None
            prompt, negative = self.styles.compose(text, request.style, keywords,
                                                   request.negative_prompt or "")
            bound_prompt, _ = self.styles.compose(bound, request.style, keywords)
            first_words = [signal_pair(k)[0] for k in range(len(cast))]
            regions = panel_regions(places, len(cast), sentence_order(bound, len(cast), first_words))
            split = character_prompts(panel.text, characters, descriptions) if separate else None
            prepared.append(PreparedPanel(
                index=i, cast=tuple(cast), prompt=prompt, bound_prompt=bound_prompt,
                negative_prompt=negative, seed=request.panel_seed(i), characters=characters,
                unnamed=tuple(name for name in panel.characters if name not in characters),
                regions=tuple(regions),
                tokens=tuple(self.binder.signal_positions(bound_prompt, len(cast))) if len(cast) > 1 else (),
                background_prompt=self.styles.compose(split.background, request.style, keywords)[0]
                if split else "",
                character_prompts=tuple(self.styles.compose(text, request.style, keywords)[0]
                                        for text in split.characters) if split else ()))
        return request, prepared

    # ------------------------------------------------------------------ drawing

    def prompt_embeddings(self, panel: PreparedPanel, guidance: bool,
                          loras: Sequence[LoraChoice] = ()) -> PromptEmbeddings:
        """The panel's conditioning (and the negative's, with ``guidance``), through the cache.

        The bound prompt is encoded with the cast's rows once per (bound prompt, cast vectors):
        a redraw, another candidate count or a panel repeated in another request reuses it. The
        negative prompt is encoded on its own, once per text (every panel of a request shares
        it); an empty one is SDXL's zero conditioning. The tensors equal, bit for bit, what
        ``binder.encode(bound_prompt, cast, negative_prompt)`` returns in one call: diffusers
        encodes prompt and negative in separate encoder calls with the same tokenisation, and
        the negative holds no signal words, so the cast's rows cannot reach it (tested). With
        per-character prompts the positive is ``[background | character 1 | ...]`` (one sequence
        each, in one batched call: :func:`pipelines.character_prompts.encode_character_prompts`) and the negative is
        tiled to the same length.
        ``loras``: the style LoRAs loaded now (they may change the text encoders: part of the key).
        """
        device = self.execution_device
        styled = lora_key(loras)
        if panel.character_prompts:  # [background | character 1 | ...], one sequence each
            positive = encode_character_prompts(self.binder, self.prompt_cache, panel.background_prompt,
                                                panel.character_prompts, panel.cast, device, styled)
        else:
            positive = self.prompt_cache.get(
                ("prompt", panel.bound_prompt, cast_key(panel.cast), styled),
                lambda: self.binder.encode(panel.bound_prompt, panel.cast,
                                           do_classifier_free_guidance=False, device=device))
        if not guidance:
            return positive
        prompts = 1 + len(panel.character_prompts) if panel.character_prompts else 1
        text = panel.negative_prompt
        if not text.strip():  # as the pipeline does for a missing negative (force_zeros_for_empty_prompt)
            return replace(positive, negative_prompt_embeds=torch.zeros_like(positive.prompt_embeds),
                           negative_pooled_prompt_embeds=torch.zeros_like(positive.pooled_prompt_embeds))
        negative = self.prompt_cache.get(
            ("negative", text, styled),
            lambda: self.binder.encode(text, (), do_classifier_free_guidance=False, device=device))
        # per-character prompts: the negative tiled to the same length (the unconditional rows
        # attend to its first copy only, see pipelines.regional)
        negative_embeds = negative.prompt_embeds if prompts == 1 else negative.prompt_embeds.repeat(1, prompts, 1)
        return replace(positive, negative_prompt_embeds=negative_embeds,
                       negative_pooled_prompt_embeds=negative.pooled_prompt_embeds)

    def draw(self, request: ComicRequest, panel: PreparedPanel,
             matcher: IdentityMatcher | None = None) -> list[PanelResult]:
        """All candidates of one prepared panel, in one batched pipeline call.

        ``request`` must be resolved (:meth:`prepare` returns it so). With ``request.regional``
        and two or more characters the UNet's cross-attention is regional
        (:mod:`pipelines.regional`); otherwise the pipeline runs exactly as without regions.
        With ``request.face_pass`` and a cast, each candidate's faces are redrawn
        (:meth:`face_pass`); ``matcher`` matches faces to characters by identity (else by place).
        Holds the device gate from encoding to the last face redrawn (one panel = one turn on
        the device).
        """
        start = time.perf_counter()
        n = request.candidates
        guidance = float(request.guidance_scale)
        regional = bool(request.regional) and len(panel.cast) > 1
        seeds = [candidate_seed(panel.seed, c) for c in range(n)]
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        edits: list[tuple[FaceEdit, ...]] = [()] * n
        loras = request.loras
        # style LoRAs: loaded into the shared modules for this panel's turn only (pipelines.loras)
        with self.gate.work(), self.gate.with_adapters(bool(loras)), \
                loras_applied(self.pipe, loras, self.config.loras_dir):
            pipe, processor = (self._regional_pipe(fresh=bool(loras)) if regional
                               else (self._call_pipe(), None))
            # the pipeline's own rule for classifier-free guidance (do_classifier_free_guidance)
            cfg = guidance > 1 and pipe.unet.config.time_cond_proj_dim is None
            embeddings = self.prompt_embeddings(panel, cfg, loras)
            if processor is not None:
                factor = pipe.vae_scale_factor
                prompts = 1 + len(panel.character_prompts) if panel.character_prompts else 0
                plan = make_plan(panel.tokens, panel.regions, (request.height // factor, request.width // factor),
                                 images=n, guidance=cfg, feather=self.config.generation.region_feather,
                                 sequence_length=embeddings.prompt_embeds.shape[1] // max(1, prompts),
                                 prompts=prompts)
                processor.set_plan(plan, unet_levels(pipe.unet), self.execution_device, pipe.unet.dtype)
            try:
                output = pipe(**embeddings.as_kwargs(), num_inference_steps=request.steps,
                              guidance_scale=guidance, width=request.width, height=request.height,
                              num_images_per_prompt=n, generator=generators if n > 1 else generators[0],
                              output_type="pil")
            finally:
                if processor is not None:
                    processor.clear()
            images = [image.convert("RGB") for image in output.images]
            if request.face_pass and panel.cast:
                for c in range(n):
                    images[c], found = self.face_pass(request, panel, images[c], seeds[c], matcher)
                    edits[c] = tuple(found)
        seconds = time.perf_counter() - start
        return [PanelResult(index=panel.index, candidate=c, image=image,
                            prompt=panel.prompt, bound_prompt=panel.bound_prompt,
                            negative_prompt=panel.negative_prompt, seed=seeds[c],
                            characters=panel.characters, seconds=seconds, regional=regional,
                            faces=edits[c])
                for c, image in enumerate(images)]

    def warm_up(self, width: int | None = None, height: int | None = None, candidates: int | None = None,
                guidance_scale: float | None = None) -> float:
        """Draw one throw-away 1-step panel of this shape; returns its seconds.

        With ``runtime.compile`` (resolved for the device: :attr:`compiles`) the UNet compiles on its first call of each input shape; calling
        this at start-up (defaults: the preset's size, candidates and guidance) moves that
        compile out of the first click. Without compile it only warms caches. With compile and
        ``generation.regional_attention`` a two-character panel (two all-zero identities) is
        drawn too, so the regional view of the UNet compiles now as well.
        """
        request = ComicRequest(panels=(PanelSpec("a comic panel"),), steps=1, seed=0, width=width,
                               height=height, candidates=candidates, guidance_scale=guidance_scale,
                               face_pass=False)
        start = time.perf_counter()
        request, prepared = self.prepare(request)
        self.draw(request, prepared[0])
        if self.compiles and self.config.generation.regional_attention:
            from pipelines.project import EmbeddedIdentity

            d1, d2 = (e.get_input_embeddings().embedding_dim
                      for e in (self.binder.text_encoder, self.binder.text_encoder_2))
            pair = {name: EmbeddedIdentity(name, torch.zeros(2, d1), torch.zeros(2, d2))
                    for name in ("Warm One", "Warm Two")}
            request = replace(request, panels=(PanelSpec("Warm One and Warm Two", tuple(pair)),),
                              regional=True)
            request, prepared = self.prepare(request, pair)
            self.draw(request, prepared[0])
        return time.perf_counter() - start

    def generate(self, request: ComicRequest,
                 identities: IdentitySource | Mapping[str, IdentityLike] | None = None,
                 matcher: IdentityMatcher | None = None) -> Iterator[PanelResult]:
        """Yield every candidate of every panel, panel by panel (streaming).

        Everything is validated before the first panel is drawn, so a bad name in panel 9 fails
        at once, not after eight panels.
        """
        request, prepared = self.prepare(request, identities)
        for panel in prepared:
            yield from self.draw(request, panel, matcher)

    def redraw(self, request: ComicRequest, panel_index: int, seed: int | None = None,
               identities: IdentitySource | Mapping[str, IdentityLike] | None = None,
               matcher: IdentityMatcher | None = None) -> list[PanelResult]:
        """Draw one panel again (all its candidates), optionally with a new panel seed.

        With ``seed`` None the panel's own seed is reused (same pixels). To keep a redraw in a
        saved project, store the seed in the panel: ``PanelSpec(..., seed=seed)``.
        """
        if not 0 <= panel_index < len(request.panels):
            raise GenerationError(f"panel index {panel_index} is out of range "
                                  f"(the comic has {len(request.panels)} panels)")
        panel_seed = seed if seed is not None else request.panel_seed(panel_index)
        single = replace(request, panels=(replace(request.panels[panel_index], seed=panel_seed),))
        resolved, prepared = self.prepare(single, identities)
        return [replace(result, index=panel_index)
                for result in self.draw(resolved, prepared[0], matcher)]


# ----------------------------------------------------------------------------- a whole comic


@dataclass
class Comic:
    """A drawn comic in memory: the project, every candidate, the chosen panels and the pages.

    Attributes:
        project: what was drawn (its ``choices`` name the chosen candidates).
        results: every candidate of every panel, in drawing order.
        panels: the chosen image of each panel.
        pages: the rendered pages.
        faces: per panel, the face boxes found in the chosen image (page bubbles avoid them).
    """

    project: Project
    results: list[PanelResult]
    panels: list[Image.Image]
    pages: list[Image.Image]
    faces: list[list[Box]]

    def candidates(self) -> dict[tuple[int, int], Image.Image]:
        """(panel, candidate) -> image, for every candidate drawn."""
        return {(r.index, r.candidate): r.image for r in self.results}


def draw_comic(generator: PanelGenerator, request: ComicRequest,
               identities: IdentitySource | Mapping[str, IdentityLike] | None = None, *,
               title: str = "", choices: Sequence[int] | None = None,
               choose: Callable[[list[PanelResult]], int] | None = None,
               face_detector: Any = None, page_style: PageStyle = PageStyle(),
               on_panel: Callable[[list[PanelResult]], None] | None = None,
               on_warning: Callable[[str], None] | None = None,
               matcher: IdentityMatcher | None = None) -> Comic:
    """Draw every panel, pick one candidate per panel, find faces and lay out the pages.

    Args:
        generator: the :class:`PanelGenerator` (``panel_generator(components)``).
        identities: the library (or a name -> identity mapping) for the cast.
        choices: a candidate per panel (a loaded project's ``choices``); wins over ``choose``.
        choose: picks a candidate from a panel's results (e.g. best face similarity);
            default: candidate 0.
        face_detector: ``detect(rgb) -> [DetectedFace]`` used to keep bubbles off faces; None
            skips detection.
        on_panel: called with each panel's results as soon as they are drawn (progress).
        on_warning: called with one line per problem worth telling (a listed character whose
            name is not in the panel text), before drawing starts.
        matcher: matches faces to characters by identity for the face pass (else by place).
    """
    resolved, prepared = generator.prepare(request, identities)
    for panel in prepared:
        for name in panel.unnamed:
            if on_warning is not None:
                on_warning(f"panel {panel.index + 1}: '{name}' is listed but not named in the text, "
                           "so that identity will not appear")
    if choices is not None and len(choices) != len(prepared):
        raise ValueError(f"{len(choices)} choices for {len(prepared)} panels")
    results: list[PanelResult] = []
    chosen: list[int] = []
    for panel in prepared:
        drawn = generator.draw(resolved, panel, matcher)
        results.extend(drawn)
        if on_panel is not None:
            on_panel(drawn)
        pick = choices[panel.index] if choices is not None else (choose(drawn) if choose else 0)
        if not 0 <= pick < len(drawn):
            raise ValueError(f"panel {panel.index + 1}: candidate {pick} was not drawn "
                             f"({len(drawn)} candidates)")
        chosen.append(pick)
    by_key = {(r.index, r.candidate): r for r in results}
    panels = [by_key[(i, c)].image for i, c in enumerate(chosen)]
    faces = detect_faces(face_detector, panels) if face_detector is not None \
        else [[] for _ in panels]
    targets = [speaker_targets(spec, image.size, by_key[(i, c)].faces, faces[i])
               for i, (spec, image, c) in enumerate(zip(resolved.panels, panels, chosen))]
    pages = render_pages(panels, [p.text for p in resolved.panels], title, faces, page_style,
                         targets)
    project = Project.from_request(resolved, generator.config, title=title, choices=chosen)
    return Comic(project=project, results=results, panels=panels, pages=pages, faces=faces)


_GENERATORS: dict[int, tuple[weakref.ref, PanelGenerator]] = {}
_GENERATORS_LOCK = threading.Lock()


def panel_generator(components) -> PanelGenerator:
    """The :class:`PanelGenerator` of ``components``, built on first use.

    A small per-process registry keyed by ``id(components)``, holding only a weak reference to
    the Components (the entry is dropped when they are garbage collected). With
    ``load_components``' own cache this means: SDXL loaded once, the pipeline built once.
    """
    key = id(components)
    with _GENERATORS_LOCK:
        entry = _GENERATORS.get(key)
        if entry is not None and entry[0]() is components:
            return entry[1]
        generator = PanelGenerator(components)
        _GENERATORS[key] = (weakref.ref(components), generator)
        weakref.finalize(components, _GENERATORS.pop, key, None)
        return generator


__all__ = ["CANDIDATE_SEED_STRIDE", "Comic", "ComicRequest", "draw_comic", "GenerationError", "IdentitySource",
           "PanelGenerator", "PanelResult", "PanelSpec", "PreparedPanel", "StyleError",
           "UnknownCharacter", "apply_memory_switches", "candidate_seed", "lookup_identity",
           "panel_generator", "panels_from_json"]
