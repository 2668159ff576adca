"""What the style objectives (`specific`, `bullets`, `plain`) ask about: everyday subjects, split once into
feedback topics and held-out topics by a hash of the topic, so a held-out prompt is on a subject the feedback
never touched (not merely a rephrasing of one it did). Also their shared coherence check, and
`topic_objective`, which makes each of them from its templates and its score."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from llm_feedback_loop.objectives.base import Objective, Scorer
from llm_feedback_loop.objectives.concise import degenerate, mentions

# (the subject as a prompt names it, words an on-topic answer uses: any of them)
TOPICS: list[tuple[str, tuple[str, ...]]] = [
    ("volcanoes", ("volcano", "volcanoes", "lava", "magma", "eruption")),
    ("honeybees", ("bee", "bees", "honeybee", "honeybees", "honey", "hive")),
    ("rainbows", ("rainbow", "rainbows", "light", "colours", "colors")),
    ("bicycles", ("bicycle", "bicycles", "bike", "bikes", "cycling")),
    ("coffee", ("coffee", "caffeine", "beans")),
    ("the Moon", ("moon", "lunar")),
    ("sharks", ("shark", "sharks")),
    ("the Great Wall of China", ("wall", "china")),
    ("photosynthesis", ("photosynthesis", "plants", "sunlight", "chlorophyll")),
    ("the piano", ("piano", "keys", "instrument")),
    ("penguins", ("penguin", "penguins")),
    ("chess", ("chess", "board", "pieces", "king")),
    ("tea", ("tea", "leaves")),
    ("earthquakes", ("earthquake", "earthquakes", "seismic", "plates")),
    ("the Internet", ("internet", "network", "computers", "online")),
    ("elephants", ("elephant", "elephants")),
    ("bread", ("bread", "flour", "dough", "yeast")),
    ("the Sun", ("sun", "star", "solar")),
    ("glaciers", ("glacier", "glaciers", "ice")),
    ("owls", ("owl", "owls")),
    ("recycling", ("recycling", "recycle", "recycled", "waste")),
    ("the Olympic Games", ("olympic", "olympics", "games", "athletes")),
    ("tomatoes", ("tomato", "tomatoes")),
    ("dolphins", ("dolphin", "dolphins")),
    ("deserts", ("desert", "deserts", "sand", "dry")),
    ("the violin", ("violin", "strings", "instrument")),
    ("vaccines", ("vaccine", "vaccines", "immune", "immunity")),
    ("butterflies", ("butterfly", "butterflies", "caterpillar")),
    ("clouds", ("cloud", "clouds", "water", "sky")),
    ("the human heart", ("heart", "blood")),
    ("trains", ("train", "trains", "railway", "rail")),
    ("chocolate", ("chocolate", "cocoa", "cacao")),
    ("the Amazon rainforest", ("amazon", "rainforest", "forest")),
    ("snowflakes", ("snowflake", "snowflakes", "snow", "ice")),
    ("wolves", ("wolf", "wolves")),
    ("gardening", ("garden", "gardening", "plants", "soil")),
    ("the Eiffel Tower", ("eiffel", "tower", "paris")),
    ("rice", ("rice", "grain")),
    ("octopuses", ("octopus", "octopuses", "tentacles", "arms")),
    ("thunderstorms", ("thunderstorm", "thunderstorms", "thunder", "lightning", "storm")),
    ("the guitar", ("guitar", "strings", "instrument")),
    ("sleep", ("sleep", "sleeping", "rest")),
    ("apples", ("apple", "apples", "fruit")),
    ("the ocean", ("ocean", "oceans", "sea", "water")),
    ("kangaroos", ("kangaroo", "kangaroos")),
    ("cheese", ("cheese", "milk")),
    ("airplanes", ("airplane", "airplanes", "plane", "planes", "aircraft", "flight")),
    ("mushrooms", ("mushroom", "mushrooms", "fungi", "fungus")),
    ("the Pyramids of Giza", ("pyramid", "pyramids", "giza", "egypt")),
    ("tigers", ("tiger", "tigers")),
    ("batteries", ("battery", "batteries", "energy", "charge")),
    ("rivers", ("river", "rivers", "water")),
    ("yoga", ("yoga", "poses", "breathing")),
    ("the Milky Way", ("milky", "galaxy", "stars")),
    ("ants", ("ant", "ants", "colony")),
    ("soap", ("soap", "germs", "washing")),
    ("bamboo", ("bamboo", "plant", "grass")),
    ("whales", ("whale", "whales")),
    ("compasses", ("compass", "compasses", "north", "magnetic")),
    ("carrots", ("carrot", "carrots", "vegetable")),
    ("the Statue of Liberty", ("statue", "liberty")),
    ("hurricanes", ("hurricane", "hurricanes", "storm", "wind")),
    ("frogs", ("frog", "frogs", "amphibian")),
    ("running", ("running", "run", "runners", "exercise")),
    ("salt", ("salt", "sodium")),
    ("the printing press", ("printing", "press", "gutenberg", "books")),
    ("coral reefs", ("coral", "reef", "reefs")),
    ("horses", ("horse", "horses")),
    ("umbrellas", ("umbrella", "umbrellas", "rain")),
    ("honey", ("honey", "bees")),
    ("telescopes", ("telescope", "telescopes", "stars", "lens")),
    ("camels", ("camel", "camels", "desert")),
    ("bridges", ("bridge", "bridges")),
    ("lemons", ("lemon", "lemons", "citrus")),
    ("the Northern Lights", ("northern", "lights", "aurora")),
    ("parrots", ("parrot", "parrots", "bird", "birds")),
    ("swimming", ("swimming", "swim", "water")),
    ("windmills", ("windmill", "windmills", "wind")),
    ("potatoes", ("potato", "potatoes")),
    ("lighthouses", ("lighthouse", "lighthouses", "light", "ships")),
    ("giraffes", ("giraffe", "giraffes")),
    ("the Sahara", ("sahara", "desert")),
    ("volleyball", ("volleyball", "ball", "net")),
    ("pencils", ("pencil", "pencils", "graphite")),
    ("lions", ("lion", "lions")),
    ("mountains", ("mountain", "mountains", "peak", "peaks")),
    ("spiders", ("spider", "spiders", "web", "webs")),
    ("the Colosseum", ("colosseum", "rome", "roman")),
    ("submarines", ("submarine", "submarines", "underwater")),
    ("bats", ("bat", "bats")),
    ("oak trees", ("oak", "oaks", "tree", "trees", "acorn", "acorns")),
    ("the saxophone", ("saxophone", "instrument", "jazz")),
    ("pandas", ("panda", "pandas", "bamboo")),
    ("vitamins", ("vitamin", "vitamins")),
    ("skyscrapers", ("skyscraper", "skyscrapers", "building", "buildings")),
    ("eagles", ("eagle", "eagles", "bird", "birds")),
    ("the Nile", ("nile", "river")),
    ("strawberries", ("strawberry", "strawberries", "fruit")),
    ("crocodiles", ("crocodile", "crocodiles")),
    ("the Titanic", ("titanic", "ship", "iceberg")),
    ("cotton", ("cotton", "fabric", "plant")),
    ("the Arctic", ("arctic", "ice", "polar")),
    ("jellyfish", ("jellyfish",)),
    ("sunflowers", ("sunflower", "sunflowers", "flower", "flowers")),
    ("tennis", ("tennis", "racket", "ball")),
    ("rockets", ("rocket", "rockets", "space", "launch")),
    ("beavers", ("beaver", "beavers", "dam", "dams")),
    ("maple syrup", ("maple", "syrup", "sap")),
    ("Mount Everest", ("everest", "mountain")),
    ("peacocks", ("peacock", "peacocks", "feathers")),
    ("the Mona Lisa", ("mona", "lisa", "painting", "leonardo")),
    ("zebras", ("zebra", "zebras", "stripes")),
    ("glass", ("glass", "sand")),
    ("hummingbirds", ("hummingbird", "hummingbirds", "bird", "birds")),
    ("caves", ("cave", "caves")),
    ("bananas", ("banana", "bananas", "fruit")),
    ("seahorses", ("seahorse", "seahorses")),
    ("the drums", ("drum", "drums", "instrument", "rhythm")),
    ("coconuts", ("coconut", "coconuts")),
    ("turtles", ("turtle", "turtles", "tortoise", "shell")),
    ("silk", ("silk", "silkworm", "silkworms")),
    ("polar bears", ("polar", "bear", "bears")),
    ("football", ("football", "soccer", "ball")),
    ("onions", ("onion", "onions")),
    ("the telephone", ("telephone", "phone", "phones")),
    ("cactuses", ("cactus", "cactuses", "cacti", "desert")),
    ("foxes", ("fox", "foxes")),
    ("the Panama Canal", ("panama", "canal")),
    ("dinosaurs", ("dinosaur", "dinosaurs")),
    ("lakes", ("lake", "lakes", "water")),
    ("walruses", ("walrus", "walruses", "tusks")),
]


def held_out_topic(topic: str) -> bool:
    """One topic in four is held out for evaluation, fixed by a hash of its name."""
    return hashlib.sha256(topic.encode("utf-8")).digest()[0] % 4 == 0


def prompts_on(templates: list[str], held_out: bool) -> list[str]:
    """Every template on every feedback topic (or every held-out topic), topic by topic."""
    return [t.format(topic=topic) for topic, _ in TOPICS if held_out_topic(topic) == held_out for t in templates]


def on_topic_check(templates: list[str]) -> Callable[[str, str], bool]:
    """The coherence check of an objective asking `templates` about TOPICS: not degenerate, and names the
    prompt's subject (any of its words)."""
    words = {t.format(topic=topic): terms for topic, terms in TOPICS for t in templates}

    def coherent(prompt: str, answer: str) -> bool:
        if degenerate(answer):
            return False
        terms = words.get(prompt)
        return terms is None or mentions(answer, terms)

    return coherent


def topic_objective(name: str, description: str, templates: list[str], score: Scorer) -> Objective:
    """An objective asking `templates` about TOPICS (held-out topics apart), scored by `score`; the simulated
    annotator likes an answer only when it complies and is coherent (on the prompt's subject, not degenerate)."""
    coherent = on_topic_check(templates)

    def preferred(prompt: str, answer: str) -> float:
        return score(prompt, answer) * coherent(prompt, answer)

    return Objective(
        name=name,
        description=description,
        train_prompts=prompts_on(templates, held_out=False),
        eval_prompts=prompts_on(templates, held_out=True),
        score=score,
        coherent=coherent,
        preference=preferred,
    )
