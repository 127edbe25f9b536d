"""Training prompts: the 81 ImageNet-style templates of the official StableIdentity code.

The official ``datasets_face/face_id.py`` (``qinghew/StableIdentity``) draws each step's prompt
uniformly from a list of 81 entries: textual inversion's 27 ``imagenet_templates_small`` as
written for photos, then the same 27 with "a photo of" read as "an illustration of", then as "a
depiction of" (57 distinct strings; the repeats are kept, so they are drawn more often, as in the
official code). It fills ``{}`` with ``"* person"`` and writes the two identity vectors over the
placeholder ``*`` and the word after it, so the prompt the text encoder sees is the template with
``{}`` = the two signal words. Here ``{}`` becomes ``v1* v2*`` (identity i's pair is
``v{2i+1}* v{2i+2}*`` at inference), which gives the same token sequence.

:data:`TEMPLATES_SHA256` is the SHA-256 of the 81 official strings joined by newlines, taken
from the official file at commit ``7a9a67e``; a test checks :data:`TEMPLATES` against it.
"""

from __future__ import annotations

import hashlib

#: Textual inversion's ``imagenet_templates_small`` (27 prompts, in their order).
PHOTO_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}", "a rendering of a {}", "a cropped photo of the {}", "the photo of a {}",
    "a photo of a clean {}", "a photo of a dirty {}", "a dark photo of the {}", "a photo of my {}",
    "a photo of the cool {}", "a close-up photo of a {}", "a bright photo of the {}",
    "a cropped photo of a {}", "a photo of the {}", "a good photo of the {}", "a photo of one {}",
    "a close-up photo of the {}", "a rendition of the {}", "a photo of the clean {}",
    "a rendition of a {}", "a photo of a nice {}", "a good photo of a {}", "a photo of the nice {}",
    "a photo of the small {}", "a photo of the weird {}", "a photo of the large {}",
    "a photo of a cool {}", "a photo of a small {}",
)
#: How the second and third blocks of 27 read "a photo of".
MEDIUMS: tuple[str, ...] = ("a photo of", "an illustration of", "a depiction of")


def official_templates() -> tuple[str, ...]:
    """The 81 official training templates, in the official order (module docstring)."""
    return tuple(t.replace(MEDIUMS[0], medium) for medium in MEDIUMS for t in PHOTO_TEMPLATES)


#: The training templates (81, with repeats); ``{}`` is where the two signal words go.
TEMPLATES: tuple[str, ...] = official_templates()
#: SHA-256 of the official list ``"\n".join(templates)`` (commit 7a9a67e of qinghew/StableIdentity).
TEMPLATES_SHA256 = "9492b607526eaaaefe38c5f4dabd0f5ca492456e6e8437ff1870590754628d7a"


def templates_digest(templates: tuple[str, ...] = TEMPLATES) -> str:
    """SHA-256 hex of the templates joined by newlines (compare with :data:`TEMPLATES_SHA256`)."""
    return hashlib.sha256("\n".join(templates).encode("utf-8")).hexdigest()


__all__ = ["MEDIUMS", "PHOTO_TEMPLATES", "TEMPLATES", "TEMPLATES_SHA256", "official_templates",
           "templates_digest"]
