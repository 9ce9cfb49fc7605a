"""The learned second stage of message grouping: words that vary inside one event become variables.

`normalize_message` replaces what has the *form* of a value (numbers, addresses, ids,
quoted data). Some values have the form of a plain word: the user in ``Failed password
for root``, the program in ``Error loading /home/ann/run.sh``, the host in a name with no
top-level domain. No rule can tell them from the words of the message; the stream can:
when one position of an otherwise identical template takes many different words, it is a
variable. That is what Drain does with its similarity threshold; here a position has to
*earn* it, so two events that differ by one word (``cupsd startup|shutdown succeeded``) are
not merged on sight.

A `TemplateBook` holds what one source (a service) has learned. It is plain data: the
service layer loads it from the database, passes it to `compute_fingerprint`, and saves
it when `changed` says so. The rules:

1. Templates are compared with every placeholder as one value (``<num>``, ``<hex>``,
   ``<ip>``... all alike): a number printed in hex on one line and in decimal on another is
   one value. A value matches only a value, never a word (``retry <num> of <num>`` is not
   ``retry limit of <num>``), until the position has been learned as a variable.
2. A known template (a *variant*) always gets the group it got the first time: the book
   remembers it. So a group's key, and the incident's fingerprint, never change as the
   book learns; a learned variable only widens which *new* variants join a group.
3. A new variant joins the first group (in order of creation) whose pattern it fits, with
   the same number of words and a learned ``<*>`` matching any word.
4. Else, if it differs from a group's pattern in exactly one word, that word is counted
   as a value seen at that position. When `min_values` different words have been seen
   there, the position becomes ``<*>`` in the group's pattern and the variant joins the
   group; the words seen before keep the groups they had (rule 2).
5. A position is learned only while the pattern keeps at least `min_literals` plain words
   (neither values nor variables): ``<*> startup succeeded`` is too little to say two lines
   are one event.
6. Else the variant starts a new group, whose key is its own template: with nothing
   learned, grouping is exactly that of `normalize_message`, hash for hash.

A book stops learning (and remembering) at `max_variants`: from then on its patterns are
frozen, so every answer it gave stays the answer it gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from incidents.fingerprinting.normalize import PLACEHOLDERS

VARIABLE = "<*>"
# What every placeholder of `normalize_message` reads as here: a value, matched only by a value
# (or by a learned variable), never by a word.
VALUE = "<>"
STATE_VERSION = 1

_PLACEHOLDER = re.compile("|".join(re.escape(placeholder) for placeholder in (*PLACEHOLDERS, VARIABLE, VALUE)))


@dataclass
class LearnedTemplate:
    """One group of a book: its key (the first variant's template, never changed) and its pattern."""

    key: str
    pattern: list[str]

    def fits(self, words: list[str]) -> bool:
        """Whether `words` (as many as the pattern) match it, ``<*>`` matching any word."""
        for expected, word in zip(self.pattern, words, strict=True):
            if expected != word and expected != VARIABLE:
                return False
        return True

    def display(self) -> str:
        """The pattern as people read it: the key's words, ``<*>`` where a variable was learned."""
        return " ".join(
            VARIABLE if expected == VARIABLE else word
            for expected, word in zip(self.pattern, self.key.split(" "), strict=True)
        )

    def literals(self) -> int:
        return sum(1 for word in self.pattern if word not in (VARIABLE, VALUE))


@dataclass
class TemplateBook:
    """What one source has learned about which words of its messages vary (see the module docstring)."""

    templates: list[LearnedTemplate] = field(default_factory=list)
    variants: dict[str, int] = field(default_factory=dict)
    candidates: dict[str, list[str]] = field(default_factory=dict)
    min_values: int = 5
    min_literals: int = 3
    max_variants: int = 20_000
    changed: bool = False
    _by_length: dict[int, list[int]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_length = {}
        for index, template in enumerate(self.templates):
            self._by_length.setdefault(len(template.pattern), []).append(index)

    # --- grouping ------------------------------------------------------------------------------

    def group(self, template: str) -> str:
        """The group key for a message template (the output of `normalize_message`); learns from it."""
        known = self.variants.get(template)
        if known is not None:
            return self.templates[known].key
        words = _words(template)
        same_length = self._by_length.get(len(words), ())
        for index in same_length:
            if self.templates[index].fits(words):
                return self._remember(template, index)
        if len(self.variants) >= self.max_variants:
            # Full: answer without learning, so that nothing answered before can change.
            return template
        for index in same_length:
            if self._learn_variable(index, words):
                return self._remember(template, index)
        self.templates.append(LearnedTemplate(key=template, pattern=words))
        index = len(self.templates) - 1
        self._by_length.setdefault(len(words), []).append(index)
        return self._remember(template, index)

    def pattern_of(self, template: str) -> str:
        """The learned pattern of the group `template` belongs to (``<*>`` for every variable), for hints."""
        known = self.variants.get(template)
        if known is None:
            return template
        return self.templates[known].display()

    def learned(self) -> list[tuple[str, str]]:
        """The groups that have learned a variable: (key, pattern), in order of creation."""
        return [
            (template.key, template.display())
            for template in self.templates
            if template.pattern != _words(template.key)
        ]

    def _remember(self, template: str, index: int) -> str:
        if len(self.variants) < self.max_variants:
            self.variants[template] = index
            self.changed = True
        return self.templates[index].key

    def _learn_variable(self, index: int, words: list[str]) -> bool:
        """Count the one word in which `words` differ from group `index`; make it a variable once it has earned it."""
        learned = self.templates[index]
        position = -1
        for at, (expected, word) in enumerate(zip(learned.pattern, words, strict=True)):
            if expected != word and expected != VARIABLE:
                if position >= 0:
                    return False  # two or more words differ: another event, or too soon to say
                position = at
        if position < 0:
            return False
        plain_left = learned.literals() - (learned.pattern[position] != VALUE)
        if plain_left < self.min_literals:
            return False
        slot = f"{index}:{position}"
        values = self.candidates.setdefault(slot, [learned.pattern[position]])
        if words[position] not in values:
            values.append(words[position])
            self.changed = True
        if len(values) < self.min_values:
            return False
        learned.pattern[position] = VARIABLE
        del self.candidates[slot]
        self.changed = True
        return True

    # --- persistence ---------------------------------------------------------------------------

    def to_state(self) -> dict:
        """The book as JSON-ready data (what the service layer stores)."""
        return {
            "version": STATE_VERSION,
            "templates": [[template.key, template.pattern] for template in self.templates],
            "variants": self.variants,
            "candidates": self.candidates,
        }

    @classmethod
    def from_state(cls, state: dict | None, **settings) -> TemplateBook:
        """A book from `to_state()` data (an empty one for None, {} or an unknown state version)."""
        if not state or state.get("version") != STATE_VERSION:
            return cls(**settings)
        return cls(
            templates=[LearnedTemplate(key=key, pattern=list(pattern)) for key, pattern in state["templates"]],
            variants=dict(state["variants"]),
            candidates={slot: list(values) for slot, values in state["candidates"].items()},
            **settings,
        )


def _words(template: str) -> list[str]:
    return _PLACEHOLDER.sub(VALUE, template).split(" ")
