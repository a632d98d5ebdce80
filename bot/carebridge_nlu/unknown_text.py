"""Lower intent confidence for messages made mostly of text the model never saw in training.

DIET's softmax spreads all probability over the known intents, so a keyboard smash such as
"阿斯顿发个" or "asdfgh" still gets one intent at 0.99 and the FallbackClassifier never fires.
This gate measures how much of a message is known (CJK characters one by one, runs of Latin
letters or digits as words) and, when too little is, scales every intent confidence down by that
share. The ranking order is kept, so the two-stage fallback can still offer the best guess.
Place it after the intent classifier and before the FallbackClassifier.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import INTENT, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.shared.utils.io import dump_obj_as_json_to_file, read_json_file

logger = logging.getLogger(__name__)

#: One CJK ideograph, or a run of ASCII letters/digits (after NFKC folds full-width forms).
_UNIT = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|[a-z0-9]+")
_VOCABULARY_FILE = "vocabulary.json"


def text_units(text: str) -> list[str]:
    """Split text into the units whose familiarity is measured; punctuation and emoji are skipped."""
    return _UNIT.findall(unicodedata.normalize("NFKC", text).lower())


def known_ratio(text: str, vocabulary: set[str]) -> float:
    """Share of the text's units seen in training; text without any unit counts as unknown."""
    units = text_units(text)
    if not units:
        return 0.0
    return sum(unit in vocabulary for unit in units) / len(units)


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class UnknownTextGate(GraphComponent):
    """Scale intent confidences by the known share of a message when that share is low."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        """Below `min_known_ratio`, confidences are multiplied by the known share."""
        return {"min_known_ratio": 0.5}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: set[str] | None = None,
    ) -> None:
        """Keep the config and, once trained or loaded, the vocabulary of known units."""
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._vocabulary = vocabulary or set()

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UnknownTextGate:
        """An untrained gate, as Rasa builds it before training."""
        return cls(config, model_storage, resource)

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> UnknownTextGate:
        """The gate with the vocabulary saved at training time (none: the gate lets everything pass)."""
        try:
            with model_storage.read_from(resource) as directory:
                vocabulary = set(read_json_file(directory / _VOCABULARY_FILE))
        except (ValueError, FileNotFoundError):
            logger.warning("UnknownTextGate has no trained vocabulary; it will not change confidences.")
            vocabulary = set()
        return cls(config, model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        """Learn every unit of the intent examples and save them with the model."""
        self._vocabulary = {
            unit for example in training_data.intent_examples for unit in text_units(example.get(TEXT) or "")
        }
        with self._model_storage.write_to(self._resource) as directory:
            dump_obj_as_json_to_file(directory / _VOCABULARY_FILE, sorted(self._vocabulary))
        return self._resource

    def process(self, messages: list[Message]) -> list[Message]:
        """Scale down the confidences of messages that are mostly unknown text."""
        if not self._vocabulary:
            return messages
        minimum = self._config["min_known_ratio"]
        for message in messages:
            intent = message.get(INTENT)
            if not intent or not message.get(TEXT):
                continue
            ratio = known_ratio(message.get(TEXT), self._vocabulary)
            if ratio >= minimum:
                continue
            logger.debug(f"Only {ratio:.0%} of the message is known text; scaling intent confidences.")
            # by id: never scale one dict twice should a classifier share it between both keys
            predictions = {id(p): p for p in [intent, *(message.get(INTENT_RANKING_KEY) or [])]}
            for prediction in predictions.values():
                if prediction.get(PREDICTED_CONFIDENCE_KEY) is not None:
                    prediction[PREDICTED_CONFIDENCE_KEY] *= ratio
        return messages
