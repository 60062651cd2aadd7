"""Friendly generated run names ("brave-otter"), easier to say than UUIDs."""

import random

_ADJ = "amber brave calm clever crimson daring eager fancy gentle golden happy icy jolly keen lively lucky mellow nimble proud quiet rapid rustic shiny silent smart swift tidy vivid warm witty".split()
_NOUN = "badger beaver bison cobra condor coyote crane dingo eagle falcon ferret gecko heron ibis jaguar koala lemur lynx marmot moose newt okapi otter panda puffin quail raven salmon tapir turtle walrus wombat yak zebra".split()


def generate_run_name() -> str:
    return f"{random.choice(_ADJ)}-{random.choice(_NOUN)}"
