"""Where a token mask sits, typed: `MaskSite(part, stage, block)` and its one stable string form.

    encoder.stage{s}.block{j}      s = encoder stage, 1-based; j = block within the stage, 0-based
    decoder.lateral{i}.block{j}    i = the encoder stage the lateral reads, 1-based; j 0-based

The model's `token_masks()` names its masks with `str(MaskSite(...))` and mask summaries store that string
as `where`; `MaskSite.parse` is the only reader of the form. Torch-free (the reports read it).
"""
from __future__ import annotations

from dataclasses import dataclass

# part -> the word before the stage number in the string form
_STAGE_WORD = {"encoder": "stage", "decoder": "lateral"}


@dataclass(frozen=True)
class MaskSite:
    """Where one token mask sits: `part` "encoder" | "decoder", `stage` 1-based (for the decoder, the
    encoder stage its lateral reads), `block` 0-based within that stage / lateral."""
    part: str
    stage: int
    block: int

    def __post_init__(self) -> None:
        if self.part not in _STAGE_WORD:
            raise ValueError(f"mask site part {self.part!r}: expected one of {', '.join(_STAGE_WORD)}")
        if isinstance(self.stage, bool) or not isinstance(self.stage, int) or self.stage < 1:
            raise ValueError(f"mask site stage {self.stage!r}: expected an int >= 1")
        if isinstance(self.block, bool) or not isinstance(self.block, int) or self.block < 0:
            raise ValueError(f"mask site block {self.block!r}: expected an int >= 0")

    def __str__(self) -> str:
        return f"{self.part}.{_STAGE_WORD[self.part]}{self.stage}.block{self.block}"

    @classmethod
    def parse(cls, text: str) -> MaskSite:
        """The site whose string form is `text` (so `MaskSite.parse(str(site)) == site`); anything else,
        e.g. a stage without its block, leading zeros or a 0 stage, is a ValueError naming `text`."""
        try:
            part, stage, block = text.split(".")
            word = _STAGE_WORD[part]
            if not (stage.startswith(word) and block.startswith("block")):
                raise ValueError
            site = cls(part, _index(stage[len(word):]), _index(block[len("block"):]))
        except (ValueError, KeyError, AttributeError):
            raise ValueError(f"unexpected token-mask location {text!r}: expected 'encoder.stage<s>.block<j>' "
                             "or 'decoder.lateral<i>.block<j>' (s, i from 1; j from 0)") from None
        if str(site) != text:
            raise ValueError(f"unexpected token-mask location {text!r}: written as {str(site)!r}")
        return site


def _index(digits: str) -> int:
    """A non-negative decimal index as written by `str(MaskSite)` (ASCII digits only, no sign or spaces)."""
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(digits)
    return int(digits)
